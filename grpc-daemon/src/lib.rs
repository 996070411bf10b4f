//! tinfoild and the tinfoil CLI (work in progress).
