"""`make emr-bundle`: what an EMR Serverless feature job needs, ready to upload.

* ``churn-env.tar.gz`` — a virtual environment with the project and its dependencies, packed with
  ``venv-pack`` the way the EMR Serverless documentation describes (``venv --copies``, the interpreter's
  standard library copied in, ``--python-prefix /home/hadoop/environment``), so it runs on workers that
  have no Python 3.11. Without pyspark and Airflow: the EMR release brings Spark and its Python side.
* ``build_features.py`` — the job's entry point (``etl_jobs/build_features.py``).
* ``upload.txt`` — where each goes (settings ``emr_archive`` and ``emr_entry_point``) and the command.

The interpreter must be built for the EMR workers' platform (Amazon Linux 2023, x86_64 or arm64 like
the application): ``emr/Dockerfile`` runs this same module there. Built on another Linux it serves to
inspect and test the bundle.
"""

from __future__ import annotations

import argparse
import email.parser
import logging
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

from churn.core.settings import PROJECT_ROOT, Settings

log = logging.getLogger("churn.emr_bundle")

# Provided by the EMR release (Spark and its Python side); a second copy would shadow it.
LEFT_OUT = {"pyspark"}
CONSTRAINTS = PROJECT_ROOT / "constraints.txt"  # the versions make test ran (absent outside a checkout)
PYTHON_PREFIX = "/home/hadoop/environment"  # where EMR Serverless unpacks spark.archives ...#environment


# What spark-submit runs on EMR: the installed package's feature job, so the archive's code is the one code.
ENTRY_POINT = '''"""EMR Serverless entry point of the feature job: churn.etl_jobs.build_features from the job's archive."""
from churn.etl_jobs.build_features import main

raise SystemExit(main())
'''


def _run(args: list[str], **kwargs) -> None:
    log.info("$ %s", " ".join(args))
    subprocess.run(args, check=True, **kwargs)


def runtime_requirements(wheel: Path) -> list[str]:
    """The wheel's own dependencies (no extras), without what the EMR release provides."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    requirements = []
    for requirement in metadata.get_all("Requires-Dist") or []:
        if "extra ==" in requirement:
            continue
        project = requirement.split(";")[0].strip()
        base = project.split("[")[0].split("=")[0].split("<")[0].split(">")[0].split("!")[0].split("~")[0].strip()
        if base.lower() not in LEFT_OUT:
            requirements.append(project)
    return requirements


def build_bundle(out: Path, python: str = sys.executable, pack: bool = True, compile_bytecode: bool = True,
                 compress_level: int = 4) -> dict[str, Path]:
    """Build the wheel, the environment and (``pack``) the archive under ``out``; returns their paths.

    ``compile_bytecode=False`` skips writing .pyc files (faster to build; the job then compiles on import);
    ``compress_level`` is gzip's for the archive (venv-pack's default 4; 1: ~20% faster, ~9% larger).
    """
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    wheels, venv = out / "wheel", out / "build" / "environment"
    shutil.rmtree(wheels, ignore_errors=True)
    shutil.rmtree(venv, ignore_errors=True)
    _run([python, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(PROJECT_ROOT)])
    (wheel,) = wheels.glob("churn_trials-*.whl")
    _run([python, "-m", "venv", "--copies", str(venv)])
    stdlib = Path(sysconfig.get_paths()["stdlib"]) if python == sys.executable else None
    if stdlib is None:
        stdlib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                                     check=True, capture_output=True, text=True).stdout.strip())
    target = venv / "lib" / stdlib.name
    log.info("copying the standard library %s into the environment", stdlib)
    shutil.copytree(stdlib, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("site-packages", "__pycache__",
                                                                                      "test", "idlelib", "tkinter"))
    env_python = str(venv / "bin" / "python")
    no_compile = [] if compile_bytecode else ["--no-compile"]
    pinned = ["-c", str(CONSTRAINTS)] if CONSTRAINTS.exists() else []  # the versions CI tested
    _run([env_python, "-m", "pip", "install", "--quiet", *no_compile, *pinned, *runtime_requirements(wheel)])
    _run([env_python, "-m", "pip", "install", "--quiet", *no_compile, "--no-deps", str(wheel)])
    entry_point = out / "build_features.py"
    entry_point.write_text(ENTRY_POINT)
    result = {"environment": venv, "entry_point": entry_point, "wheel": wheel}
    if pack:
        archive = out / "churn-env.tar.gz"
        archive.unlink(missing_ok=True)
        _run([str(Path(sys.executable).parent / "venv-pack"), "--prefix", str(venv), "--output", str(archive),
              "--python-prefix", PYTHON_PREFIX, "--compress-level", str(compress_level), "--quiet"])
        result["archive"] = archive
    log.info("bundle built in %.0f s", time.perf_counter() - started)
    return result


def upload_instructions(settings: Settings, bundle: dict[str, Path]) -> str:
    paths = settings.emr_code_paths
    lines = [f"aws s3 cp {bundle['entry_point']} {paths['entry_point']}"]
    if "archive" in bundle:
        lines.append(f"aws s3 cp {bundle['archive']} {paths['archive']}")
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(PROJECT_ROOT / "dist" / "emr"), help="output folder (default dist/emr)")
    parser.add_argument("--python", default=sys.executable, help="Python 3.11 interpreter of the environment")
    parser.add_argument("--no-pack", action="store_true", help="build the environment only (no archive)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bundle = build_bundle(Path(args.out), python=args.python, pack=not args.no_pack)
    instructions = upload_instructions(Settings(), bundle)
    (Path(args.out) / "upload.txt").write_text(instructions)
    for name, path in bundle.items():
        size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        print(f"{name:12s} {path}  ({size / 1e6:.0f} MB)")
    print("upload (settings CHURN_EMR_ENTRY_POINT, CHURN_EMR_ARCHIVE):\n" + instructions, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
