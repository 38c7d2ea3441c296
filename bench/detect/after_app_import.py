"""Run a function in a server once its app module is imported, for hooks that patch it.

``trace_hooks.py`` and ``ab_hooks.py`` run as a server's ``sitecustomize``, before imagetag
is imported; they register here what to patch, which then runs right after
``imagetag.entrypoints.http.app`` (and so everything it uses) is imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

APP_MODULE = "imagetag.entrypoints.http.app"


def after_app_import(install: Callable[[], None]) -> None:
    sys.meta_path.insert(0, _AfterAppImport(install))


class _AfterAppImport(importlib.abc.MetaPathFinder):
    def __init__(self, install: Callable[[], None]) -> None:
        self._install = install

    def find_spec(self, name: str, path: Any, target: ModuleType | None = None) -> Any:
        if name != APP_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            self._install()

        loader.exec_module = exec_module
        return spec
