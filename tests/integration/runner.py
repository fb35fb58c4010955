"""A tiny runner: calls every function named test_* of the calling module, prints a line per test and
'N passed, N failed' last; exits non-zero when any failed."""
import inspect
import sys
import time
import traceback


def run(module_globals):
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and inspect.isfunction(f)]
    passed = failed = 0
    for name, fn in tests:
        t0 = time.time()
        try:
            fn()
            passed += 1
            print(f"PASS {name} ({time.time() - t0:.1f} s)", flush=True)
        except Exception:  # noqa: BLE001 - report every failure and keep going
            failed += 1
            print(f"FAIL {name} ({time.time() - t0:.1f} s)", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
