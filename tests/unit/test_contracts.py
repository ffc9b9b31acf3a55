"""Contracts: one file per module, versioned, frozen, with ids, correlation and clock time."""

from __future__ import annotations

import importlib
import inspect
import uuid

import pydantic
import pytest

from contracts.base import Message

MODULES = [
    "cam",
    "onboarding",
    "strategy",
    "production",
    "qc",
    "client_review",
    "delivery",
    "reporting",
    "billing",
    "retention",
    "orchestration",
    "identity",
    "observability",
    "learning",
]


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_a_versioned_contract_file(name: str) -> None:
    module = importlib.import_module(f"contracts.{name}")
    assert isinstance(module.CONTRACT_VERSION, int) and module.CONTRACT_VERSION >= 1
    messages = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Message) and obj.__module__ == module.__name__
    ]
    assert messages, f"contracts/{name}.py defines no message"
    for cls in messages:
        assert cls.model_config.get("frozen") is True, cls
        assert cls.model_fields["contract_version"].default == module.CONTRACT_VERSION, cls


def test_messages_are_frozen_and_refuse_unknown_fields() -> None:
    from contracts.cam import CampaignPaused

    event = CampaignPaused(campaign="c", reason="r")
    with pytest.raises(pydantic.ValidationError):
        event.campaign = "other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        CampaignPaused(campaign="c", reason="r", surprise=1)  # type: ignore[call-arg]
    assert isinstance(event.message_id, uuid.UUID)
    assert event.correlation == event.message_id


@pytest.mark.anyio
async def test_inside_a_system_ids_time_and_correlation_come_from_the_runtime() -> None:
    from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, FakeClock, RuntimeSettings
    from contracts.cam import CampaignPaused

    made: list[CampaignPaused] = []

    class Maker(Actor[CampaignPaused]):
        async def receive(self, message: CampaignPaused) -> None:
            made.append(CampaignPaused(campaign="child", reason="caused by parent"))

    async def run(seed: int) -> tuple[CampaignPaused, CampaignPaused]:
        made.clear()
        clock = FakeClock()
        settings = RuntimeSettings(tick_interval_s=0, seed=seed)
        async with ActorSystem(settings, clock=clock, children=[ChildSpec("maker", Maker)]) as system:
            parent = system.message(CampaignPaused, campaign="parent", reason="test")
            await system.ref("maker", CampaignPaused).ask(parent)
        return parent, made[0]

    parent, child = await run(1)
    assert child.correlation_id == parent.message_id
    assert child.timestamp == parent.timestamp  # the fake clock did not move
    again_parent, again_child = await run(1)
    assert (again_parent.message_id, again_child.message_id) == (
        parent.message_id,
        child.message_id,
    )
    other_parent, _ = await run(2)
    assert other_parent.message_id != parent.message_id
