//! libtinfoil_pkcs11.so (work in progress).
