"""`ModuleRegistry`: every module's declaration, and what follows from them.

Modules declare themselves (`contracts.orchestration.ModuleSpec`, made in `<module>/module.py`);
the composition root hands the declarations here. The registry answers which actors stop
when a module is switched off or the worker is paused, and which modules stop with another.
"""

from __future__ import annotations

from collections.abc import Iterable

from contracts.orchestration import ModuleSpec

#: The switch that pauses every module's sending actors at once.
WORKER = "worker"


class UnknownModule(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class ModuleRegistry:
    def __init__(self, specs: Iterable[ModuleSpec]) -> None:
        self._specs: dict[str, ModuleSpec] = {}
        for spec in specs:
            if spec.name in self._specs or spec.name == WORKER:
                raise ValueError(f"module {spec.name!r} declared twice (or named like the worker switch)")
            self._specs[spec.name] = spec
        for spec in self._specs.values():
            missing = [n for n in spec.needs if n not in self._specs]
            if missing:
                raise ValueError(f"module {spec.name!r} needs {missing[0]!r}, which is not declared")

    def specs(self) -> list[ModuleSpec]:
        return list(self._specs.values())

    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> ModuleSpec:
        spec = self._specs.get(name)
        if spec is None:
            known = ", ".join(self._specs) or "none"
            raise UnknownModule(f"no module named {name!r} (known: {known})")
        return spec

    def module_of(self, actor: str) -> str | None:
        for spec in self._specs.values():
            if actor in spec.actors:
                return spec.name
        return None

    def dependents(self, name: str) -> list[str]:
        """Modules that stop with `name`: those that need it, directly or through another."""
        found: list[str] = []
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for spec in self._specs.values():
                if current in spec.needs and spec.name not in found and spec.name != name:
                    found.append(spec.name)
                    frontier.append(spec.name)
        return found

    def stopped_modules(self, disabled: Iterable[str]) -> set[str]:
        """The modules whose work stops: those switched off and those that need them."""
        stopped: set[str] = set()
        for name in disabled:
            if name in self._specs:
                stopped.add(name)
                stopped.update(self.dependents(name))
        return stopped

    def actors_to_suspend(self, disabled: Iterable[str], *, worker_paused: bool) -> set[str]:
        """The actors that take no work given the switches."""
        suspended: set[str] = set()
        for name in self.stopped_modules(disabled):
            spec = self._specs[name]
            suspended.update(spec.switchable or spec.actors)
        if worker_paused:
            for spec in self._specs.values():
                suspended.update(spec.sending)
        return suspended
