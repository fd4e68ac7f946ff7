"""The config's time sections: callee-local calling hours and schedule windows."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["CallingHoursConfig", "ScheduleWindow"]

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class CallingHoursConfig(BaseModel):
    """Callee-local calling hours, passed through to the compliance settings.

    ``default`` applies to every weekday not named; a day is ``"HH:MM-HH:MM"``, a list
    of them, or ``[]`` (closed). ``holidays`` maps ISO dates to the same.
    """

    model_config = _STRICT

    enabled: bool = True
    default: str | list[str] = "08:00-21:00"
    mon: str | list[str] | None = None
    tue: str | list[str] | None = None
    wed: str | list[str] | None = None
    thu: str | list[str] | None = None
    fri: str | list[str] | None = None
    sat: str | list[str] | None = None
    sun: str | list[str] | None = None
    holidays: dict[dt.date, str | list[str]] = Field(default_factory=dict)
    #: zone for numbers whose zone is unknown (None: skip them ``unknown_timezone``)
    fallback_zone: str | None = None
    state_rules: bool = True
    phone_cap: PositiveInt | None = 3
    phone_cap_window_s: PositiveFloat = 86_400.0
    campaign_cap: PositiveInt | None = None
    campaign_cap_window_s: PositiveFloat = 86_400.0

    @model_validator(mode="after")
    def _valid(self) -> CallingHoursConfig:
        self.compliance_settings("check")  # raises ValueError with the compliance message
        return self

    def mapping(self) -> dict[str, Any]:
        """The ``CallingHours.from_mapping`` form."""
        days = {d: getattr(self, d) for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        out: dict[str, Any] = {"default": self.default}
        out.update({d: v for d, v in days.items() if v is not None})
        if self.holidays:
            out["holidays"] = {d.isoformat(): v for d, v in self.holidays.items()}
        return out

    def compliance_settings(self, campaign: str) -> Any:
        """A :class:`dispatch.compliance.ComplianceSettings` for ``campaign``."""
        from dispatch.compliance.context import ComplianceSettings, shipped_state_rules
        from dispatch.compliance.window import CallingHours, WindowConfigError

        try:
            return ComplianceSettings(
                campaign=campaign, calling_hours=CallingHours.from_mapping(self.mapping()),
                fallback_zone=self.fallback_zone,
                state_rules=shipped_state_rules() if self.state_rules else None,
                phone_cap=self.phone_cap, phone_cap_window_s=self.phone_cap_window_s,
                campaign_cap=self.campaign_cap, campaign_cap_window_s=self.campaign_cap_window_s)
        except WindowConfigError as exc:
            raise ValueError(str(exc)) from None


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone (expected an IANA name such as "
                         "Europe/Madrid)") from None
    return value


def _check_cron(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"not a cron expression ({exc}); five fields: minute hour "
                         "day month day_of_week, e.g. '0 9 * * mon-fri'") from None
    return value


class ScheduleWindow(BaseModel):
    """A window in which the campaign may dial: from each ``start`` to the next ``end``.

    Both are APScheduler crontab expressions in ``timezone`` (write weekdays as names,
    ``mon-fri``: APScheduler counts numeric weekdays from Monday = 0).
    """

    model_config = _STRICT

    start: str
    end: str
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)
