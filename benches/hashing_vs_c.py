"""tower-auth's hashing against the C reference implementations, in one run, at equal
parameters: bcrypt against libxcrypt (Debian's libcrypt, through Python's `crypt`), and
argon2id against libargon2 (Debian's libargon2-1, through ctypes).

    python3 benches/hashing_vs_c.py              # about a minute on 2 cores
    python3 benches/hashing_vs_c.py --samples 9  # steadier medians

It builds `cargo build --release --example hash_cost`, then for each setting times the C
implementation and ours alternately (median of --samples hashes each, one core), and prints
a Markdown table with the ratio ours / C (1.00 = as fast; the target is at most 1.10).
Run as root on a machine without libargon2-1, it installs it with apt-get.
"""

import argparse
import ctypes
import ctypes.util
import os
import statistics
import subprocess
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = b"correct horse battery staple"
BCRYPT_COSTS = [10, 12]
ARGON2 = [(19456, 2), (47104, 1), (65536, 2)]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # libxcrypt on Debian; deprecated in Python, still the C reference here


def libargon2():
    path = ctypes.util.find_library("argon2")
    if path is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "libargon2-1"], check=True,
                       stdout=subprocess.DEVNULL)
        path = ctypes.util.find_library("argon2") or "libargon2.so.1"
    if path is None:
        sys.exit("libargon2 is missing: apt-get install libargon2-1")
    lib = ctypes.CDLL(path)
    lib.argon2id_hash_encoded.restype = ctypes.c_int
    lib.argon2id_hash_encoded.argtypes = [
        ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t,
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
    ]
    return lib


def c_bcrypt(cost):
    salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** cost)
    start = time.perf_counter()
    result = crypt.crypt(PASSWORD.decode(), salt)
    elapsed = time.perf_counter() - start
    assert result.startswith(f"$2b${cost:02d}$"), result
    return elapsed


def c_argon2(lib, m, t):
    salt = os.urandom(16)
    out = ctypes.create_string_buffer(256)
    start = time.perf_counter()
    rc = lib.argon2id_hash_encoded(t, m, 1, PASSWORD, len(PASSWORD), salt, len(salt), 32,
                                   out, len(out))
    elapsed = time.perf_counter() - start
    assert rc == 0, rc
    assert out.value.startswith(f"$argon2id$v=19$m={m},t={t},p=1$".encode()), out.value
    return elapsed


def ours(binary, args):
    """Median ms, as the example measures it (one hash per sample)."""
    out = subprocess.run([binary, *args], check=True, stdout=subprocess.PIPE).stdout.decode()
    return float(out.split()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "hash_cost"],
                   cwd=ROOT, check=True)
    target = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT, check=True,
        stdout=subprocess.PIPE,
    ).stdout
    import json
    binary = os.path.join(json.loads(target)["target_directory"], "release", "examples",
                          "hash_cost")
    lib = libargon2()

    rows = []
    for cost in BCRYPT_COSTS:
        c = statistics.median(c_bcrypt(cost) for _ in range(args.samples)) * 1e3
        r = ours(binary, ["--samples", str(args.samples), "--bcrypt", str(cost)])
        rows.append((f"bcrypt, cost {cost}", "libxcrypt", c, r))
    for m, t in ARGON2:
        c = statistics.median(c_argon2(lib, m, t) for _ in range(args.samples)) * 1e3
        r = ours(binary, ["--samples", str(args.samples), "--argon2", f"{m}:{t}"])
        rows.append((f"argon2id, m={m // 1024} MiB, t={t}, p=1", "libargon2", c, r))

    print(f"median of {args.samples} hashes each, one core, same run")
    print()
    print("| setting | C reference | C ms | ours ms | ours / C |")
    print("|---|---|--:|--:|--:|")
    for name, ref, c, r in rows:
        print(f"| {name} | {ref} | {c:.1f} | {r:.1f} | {r / c:.2f} |")


if __name__ == "__main__":
    main()
