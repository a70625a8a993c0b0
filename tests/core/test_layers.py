"""mww_core is a plain library: it imports without Prefect."""

import subprocess
import sys


def test_mww_core_imports_without_prefect():
    code = (
        "import sys, importlib, pkgutil, mww_core\n"
        "for m in pkgutil.walk_packages(mww_core.__path__, 'mww_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
