"""US state and DC postal codes and names (to read a record's ``state`` field)."""

from __future__ import annotations

__all__ = ["US_STATES", "state_code"]

US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota",
    "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}
_BY_NAME = {name.lower(): code for code, name in US_STATES.items()}
_BY_NAME.update({"washington state": "WA", "washington d.c.": "DC", "washington, d.c.": "DC"})


def state_code(text: str) -> str | None:
    """``"FL"``, ``"fl"``, ``"Florida"`` → ``"FL"``; None when not a US state or DC."""
    cleaned = " ".join(text.split()).strip().lower()
    if cleaned.upper() in US_STATES:
        return cleaned.upper()
    return _BY_NAME.get(cleaned)
