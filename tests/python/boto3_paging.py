"""boto3 paging (Limit, Marker, NextMarker, Truncated) over many keys and
aliases, as KMS pages them: `boto3_paging.py KEYS ALIASES`.

Makes KEYS keys and ALIASES aliases (a few threads, boto3 clients are
thread-safe), then lists them page by page by hand and with boto3's own
paginators, and checks that every item comes exactly once, that only the
last page is not Truncated, and that ListAliases' KeyId filter pages too.
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

KEYS, ALIASES = int(sys.argv[1]), int(sys.argv[2])
kms = boto3.client("kms", config=Config(retries={"max_attempts": 1}, max_pool_connections=16))

started = time.monotonic()
with ThreadPoolExecutor(8) as pool:
    made = list(pool.map(lambda _: kms.create_key()["KeyMetadata"]["KeyId"], range(KEYS)))
    # Aliases over the first keys; the first key gets 150 of them (a filtered listing over two pages).
    targets = [made[0] if i < 150 else made[i % KEYS] for i in range(ALIASES)]
    list(pool.map(lambda i: kms.create_alias(AliasName=f"alias/page-{i:05d}", TargetKeyId=targets[i]), range(ALIASES)))
made_in = time.monotonic() - started


def pages(call, field, **args):
    """Every page of a listing by hand; checks Truncated/NextMarker on each."""
    items, marker, count = [], None, 0
    while True:
        page = call(**args, **({"Marker": marker} if marker else {}))
        count += 1
        items += page[field]
        assert isinstance(page["Truncated"], bool), page.keys()
        if not page["Truncated"]:
            assert "NextMarker" not in page, "a last page with a NextMarker"
            return items, count
        marker = page["NextMarker"]
        assert marker, "Truncated without NextMarker"


listed, count = pages(kms.list_keys, "Keys", Limit=1000)
ids = [k["KeyId"] for k in listed]
assert len(ids) == len(set(ids)), "a key listed twice"
assert set(made) <= set(ids), f"{len(set(made) - set(ids))} keys never listed"
assert count == -(-len(ids) // 1000), f"{count} pages of up to 1000 for {len(ids)} keys"

# The default page size (100) and a small one, through boto3's paginator.
paged = [k["KeyId"] for p in kms.get_paginator("list_keys").paginate() for k in p["Keys"]]
assert sorted(paged) == sorted(ids), "the paginator saw other keys"
small, count = pages(kms.list_keys, "Keys", Limit=7)
assert [k["KeyId"] for k in small] == ids, "Limit=7 pages differ from Limit=1000 pages"

aliases, count = pages(kms.list_aliases, "Aliases", Limit=500)
names = [a["AliasName"] for a in aliases if a["AliasName"].startswith("alias/page-")]
assert sorted(names) == [f"alias/page-{i:05d}" for i in range(ALIASES)], "aliases missing or repeated"
paged = [a["AliasName"] for p in kms.get_paginator("list_aliases").paginate() for a in p["Aliases"]]
assert sorted(paged) == sorted(a["AliasName"] for a in aliases)

# ListAliases with a KeyId filter pages over that key's aliases only.
mine, count = pages(kms.list_aliases, "Aliases", KeyId=made[0], Limit=100)
assert count == 2, f"{count} pages for 150 aliases at Limit=100"
assert all(a["TargetKeyId"] == made[0] for a in mine), "the filter let other keys' aliases through"
assert len(mine) == 150 + sum(1 for i in range(150, ALIASES) if targets[i] == made[0]), len(mine)

# Limits and markers KMS refuses.
for bad in ({"Limit": 1001}, {"Marker": "not-a-marker"}):
    try:
        kms.list_keys(**bad)
        raise AssertionError(f"list_keys({bad}) succeeded")
    except ClientError as e:
        assert e.response["Error"]["Code"] in ("ValidationException", "InvalidMarkerException"), e.response

print(f"made {KEYS} keys and {ALIASES} aliases in {made_in:.1f} s")
print(f"paged {KEYS} keys and {ALIASES} aliases")
