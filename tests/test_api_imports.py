import subprocess
import sys
from pathlib import Path


def test_api_does_not_load_tensorflow():
    code = ("import sys; import api, api.corpora, api.jobs, api.models, api.system; "
            "import client.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'worker')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
