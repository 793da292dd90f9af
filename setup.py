"""The one thing pyproject.toml cannot say: the top-level ``config/`` directory ships inside the
package as ``dispatcher.defaults`` (package data), so an installed Loa finds the plan, the
numbering table, the province and the starter deployment file (dispatcher.config.config_dir)."""

from setuptools import find_namespace_packages, setup

CODE = find_namespace_packages(include=["dispatcher*", "adapters*"])

setup(
    packages=[*CODE, "dispatcher.defaults"],
    package_dir={"dispatcher.defaults": "config"},
)
