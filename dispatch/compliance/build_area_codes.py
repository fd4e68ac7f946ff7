"""Regenerate ``us_area_codes.toml`` from phonenumbers' offline geocoder data.

    python -m dispatch.compliance.build_area_codes > dispatch/compliance/us_area_codes.toml

Why a shipped table and not ``phonenumbers.geocoder`` at dial time: its description
is display text at *prefix* granularity ("San Francisco, CA", "Florida", "" for
toll-free), loading its data costs about half a second and a large share of memory,
and an operator cannot correct it. This script keeps, for each NANP area code
whose prefixes name US states or DC, the state named by most of its prefixes, and
skips the others (non-geographic codes, Canada, the Caribbean, US territories).
The output is reviewed and committed; edit it by hand if an area code is wrong.
"""

from __future__ import annotations

import collections
import re
import sys

from dispatch.compliance.usstates import US_STATES, state_code

__all__ = ["derive", "main"]

_SUFFIX = re.compile(r",\s*([A-Z]{2})$")


def _state_of(description: str) -> str | None:
    suffix = _SUFFIX.search(description)
    if suffix is not None:
        return suffix.group(1) if suffix.group(1) in US_STATES else None
    return state_code(description)


def derive() -> dict[str, str]:
    """Area code → state code, by majority over the geocoder's prefixes."""
    import phonenumbers
    from phonenumbers.geodata import GEOCODE_DATA

    votes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for prefix, names in GEOCODE_DATA.items():
        if not prefix.startswith("1") or len(prefix) < 4:
            continue
        npa = prefix[1:4]
        region = phonenumbers.region_code_for_number(phonenumbers.parse(f"+1{npa}2000000"))
        state = _state_of(names.get("en", ""))
        if region == "US" and state is not None:
            votes[npa][state] += 1
    return {npa: counter.most_common(1)[0][0] for npa, counter in sorted(votes.items())}


def main() -> None:
    import phonenumbers

    out = sys.stdout
    out.write(f"# US area code -> state postal code. Derived from phonenumbers "
              f"{phonenumbers.__version__} geocoder data\n# by `python -m "
              "dispatch.compliance.build_area_codes`; reviewed and editable. Not legal "
              "advice.\n\n[area_codes]\n")
    for npa, state in derive().items():
        out.write(f'"{npa}" = "{state}"\n')


if __name__ == "__main__":
    main()
