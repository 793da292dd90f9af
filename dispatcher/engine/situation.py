"""Setting the situation record: checked (:func:`dispatcher.domain.situation.check`), checked
against the plan's texts (:func:`dispatcher.domain.plantemplate.check`), then stored with who
and when. The API and ``loa situation set --admin-direct`` both set it here."""

from __future__ import annotations

import datetime as dt

from dispatcher.domain import plantemplate, situation
from dispatcher.domain.plan import Plan
from dispatcher.domain.province import Province
from dispatcher.domain.situation import Situation, SituationVersion
from dispatcher.engine import textedits
from dispatcher.store.base import Store


async def set_situation(store: Store, record: Situation, *, province: Province, plan: Plan,
                        by: str, now: dt.datetime) -> SituationVersion:
    """Make ``record`` the situation in force (the waves made from now on render it)."""
    checked = situation.check(record, province)
    plantemplate.check(checked, (await textedits.effective_plan(store, plan))[0],
                       {d.id: d.name for d in province.districts.values()})
    version = SituationVersion(checked, now, by)
    await store.situation.set(version)
    return version
