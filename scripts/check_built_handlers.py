"""Every handler imports from what `sam build` wrote, with the layer's own copy of our package.

``sam build`` copies ``layers/shared`` into the layer and each ``functions/<step>`` into its
function; a module the layer does not ship (a new wing missing from the build, a data file left
out) would only show on AWS, at the first invocation. This runs each built ``app.py`` in a fresh
interpreter whose ``redis_migration`` comes from the built layer and nowhere else, then reads
every host script and Lua script through the package, as the handlers do.

The layer is built for arm64, so its compiled dependencies (pydantic-core, ...) cannot load
here: the third-party packages come from this environment, and only our package from the build.

Usage: ``python scripts/check_built_handlers.py .aws-sam/build`` (exit 1 naming each failure).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "layers" / "shared" / "redis_migration"
PROBE = """
import sys
import redis_migration
assert redis_migration.__file__.startswith(sys.argv[1]), redis_migration.__file__
import app
from redis_migration.host.scripts import INCLUDES, host_script
for script in INCLUDES:
    host_script(script)
from redis_migration.data.link import lua_source
for script in sys.argv[2:]:  # every Lua script of the source tree
    lua_source(script)
"""


def main(build_dir: Path) -> int:
    layer = build_dir / "SharedLayer" / "python" / "redis_migration"
    if not layer.is_dir():
        print(f"check: no {layer}: run `sam build` first", file=sys.stderr)
        return 1
    handlers = sorted(p.parent for p in build_dir.glob("*/app.py"))
    if not handlers:
        print(f"check: no built handlers under {build_dir}", file=sys.stderr)
        return 1
    site_packages = sysconfig.get_paths()["purelib"]
    lua_scripts = sorted(p.name for p in (SOURCE / "data" / "lua").glob("*.lua"))
    with tempfile.TemporaryDirectory() as only_ours:
        # Our package alone, so the arm64 wheels beside it in the layer stay out of the path.
        (Path(only_ours) / "redis_migration").symlink_to(layer.resolve(), target_is_directory=True)

        def run(handler: Path) -> str | None:
            # -S: no site processing, so the editable install's finder cannot supply our package.
            command = [
                sys.executable,
                "-S",
                "-c",
                f"import sys; sys.path[:0] = {[str(handler), only_ours, site_packages]!r}\n" + PROBE,
                only_ours,
                *lua_scripts,
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=handler)
            if result.returncode == 0:
                return None
            last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            return f"{handler.name}: {last}"

        # Each interpreter mostly imports: a few at once keep both cores busy.
        with ThreadPoolExecutor(max_workers=4) as pool:
            failures = [failure for failure in pool.map(run, handlers) if failure]
    for failure in failures:
        print(f"check: built handler {failure}", file=sys.stderr)
    print(f"check: {len(handlers) - len(failures)} of {len(handlers)} built handlers import from the build")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")))
