"""What pyproject.toml cannot say: the packages, with the top-level ``config/`` directory shipped
inside the package as ``dispatcher.defaults`` (package data), so an installed Loa finds the plan,
the numbering table, the province and the starter deployment file
(dispatcher.domain.config.config_dir); and the lab (``bench``) shipped without its
pytest-benchmark files, which stay in the checkout."""

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

CODE = find_namespace_packages(include=["dispatcher*", "adapters*", "bench*"])


class BuildPy(build_py):  # type: ignore[misc]
    """Leaves ``bench/test_*.py`` (pytest-benchmark files) out of the wheel."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules: list[tuple[str, str, str]] = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == "bench" and m[1].startswith("test_"))]


setup(
    packages=[*CODE, "dispatcher.defaults"],
    package_dir={"dispatcher.defaults": "config"},
    cmdclass={"build_py": BuildPy},
)
