"""`cgan-dashboard`: serve the installed app with Streamlit, from any folder.

`streamlit run dashboard/app.py` needs a checkout; this finds app.py inside the installed
package and runs it the same way (`cgan-dashboard --server.port 8600` passes every argument
on to `streamlit run`), so a non-editable install serves the app with no path to know.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

APP = Path(__file__).resolve().with_name("app.py")

# The options of the repository's .streamlit/config.toml (a test keeps the two equal).
# Streamlit reads that file only when started in the repository root, and it is not
# installed with the package, so the launcher gives these options as flags. Flags beat
# every config file, though, so each one is given only where the user has not set that
# option: on the command line, in its STREAMLIT_* variable, or in a config.toml Streamlit
# reads (~/.streamlit/, ./.streamlit/). They behave as defaults, and a user's settings
# win as they would over the repository's file; writing a config file into the user's
# folders instead would be a surprise.
SERVER_DEFAULTS: dict[str, bool | str] = {
    "server.headless": True,  # serve, do not try to open a browser on the server
    "browser.gatherUsageStats": False,  # nothing is sent to Streamlit's telemetry
    "client.toolbarMode": "viewer",  # users see no developer menu (rerun, clear cache)
}


def _env_var(option: str) -> str:
    """Streamlit's variable for an option: server.headless -> STREAMLIT_SERVER_HEADLESS."""
    return "STREAMLIT_" + re.sub(r"(?=[A-Z])", "_", option.replace(".", "_")).upper()


def _config_files() -> list[Path]:
    """Where Streamlit reads config.toml: the user's, then the current folder's."""
    return [Path.home() / ".streamlit" / "config.toml", Path.cwd() / ".streamlit" / "config.toml"]


def _set_in(path: Path, option: str) -> bool:
    section, name = option.split(".")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get(section, {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # absent, or Streamlit itself will say what is wrong with it
    return isinstance(table, dict) and name in table


def default_flags(args: Sequence[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """`--option=value` for each of SERVER_DEFAULTS that nothing else sets.

    The config files are read here rather than by asking Streamlit's own parser: a parse
    before `streamlit run` makes it warn that the server options changed."""
    own = args[: args.index("--")] if "--" in args else args  # after --: the app's own
    files = _config_files()
    flags = []
    for option, value in SERVER_DEFAULTS.items():
        flag = f"--{option}"
        if (
            any(arg == flag or arg.startswith(flag + "=") for arg in own)
            or _env_var(option) in environ
            or any(_set_in(path, option) for path in files)
        ):
            continue
        flags.append(f"{flag}={str(value).lower() if isinstance(value, bool) else value}")
    return flags


def main(argv: Sequence[str] | None = None) -> None:
    """`streamlit run APP [defaults] ARGS...`; exits with Streamlit's exit code."""
    from streamlit.web import cli

    args = list(sys.argv[1:] if argv is None else argv)
    cli.main(["run", str(APP), *default_flags(args), *args], prog_name="streamlit")


if __name__ == "__main__":
    main()
