"""The harness: drives and judges the simulators."""

import warnings

# connexion imports starlette's test client at import time; its notice is noise for users.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
