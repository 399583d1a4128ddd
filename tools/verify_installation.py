"""What this installation has and lacks (the same report as ``neo doctor``).

uv run python tools/verify_installation.py
"""

import sys

from neo.commands.doctor import doctor

if __name__ == "__main__":
    sys.exit(doctor())
