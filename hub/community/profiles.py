"""Profile fields: what a member may write, and how it is shown safely.

Text is stored as the member typed it (bounded, without control characters);
pages escape it, and the bio's Markdown is rendered to HTML and then cleaned by
nh3 against a short allow-list, so no script, event handler or
``javascript:`` link written by a member ever reaches another member's browser.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlparse

import markdown
import nh3
from sqlalchemy import delete

from .access import HIDEABLE_FIELDS
from .models import VISIBILITIES, Profile, Tag, utcnow

TEXT_LIMITS = {"display_name": 80, "headline": 140, "city": 80, "bio": 5000}
LIST_FIELDS = ("skills", "interests", "languages")
LIST_ITEMS, ITEM_LENGTH = 20, 40
MAX_LINKS = 10
EDITABLE = (*TEXT_LIMITS, *LIST_FIELDS, "links", "visibility", "private_fields", "leaderboard")

BIO_TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h3", "h4", "hr"}
BIO_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}


class ProfileError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def default_profile(username: str) -> Profile:
    """What a member's profile holds before they edit it: course peers only, no leaderboard."""
    return Profile(
        username=username, display_name="", headline="", bio="", skills=[], interests=[], languages=[],
        links=[], city="", visibility="peers", private_fields=[], leaderboard=False, updated_at=utcnow(), hidden=False,
    )


def _clean_text(field: str, value, limit: int, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise ProfileError(field, "must be text")
    allowed = "\n\t" if multiline else ""
    value = "".join(c for c in value if c in allowed or unicodedata.category(c)[0] != "C")
    value = value.strip() if multiline else " ".join(value.split())
    if len(value) > limit:
        raise ProfileError(field, f"at most {limit} characters")
    return value


def _clean_list(field: str, value) -> list[str]:
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list):
        raise ProfileError(field, "must be a list of words or short phrases")
    items, seen = [], set()
    for item in value:
        item = _clean_text(field, item, ITEM_LENGTH)
        if item and tag_key(item) not in seen:
            seen.add(tag_key(item))
            items.append(item)
    if len(items) > LIST_ITEMS:
        raise ProfileError(field, f"at most {LIST_ITEMS} entries")
    return items


def _clean_links(value) -> list[dict]:
    if not isinstance(value, list):
        raise ProfileError("links", "must be a list of {label, url}")
    links = []
    for item in value:
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise ProfileError("links", "each link needs a url")
        url = item["url"].strip()
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 300:
            raise ProfileError("links", f"{url[:60]!r} is not an http(s) address")
        label = _clean_text("links", item.get("label") or parsed.netloc, ITEM_LENGTH)
        links.append({"label": label, "url": url})
    if len(links) > MAX_LINKS:
        raise ProfileError("links", f"at most {MAX_LINKS} links")
    return links


def apply_patch(profile: Profile, data: dict) -> None:
    """Check and apply a member's changes; raise ProfileError naming the first bad field."""
    if not isinstance(data, dict):
        raise ProfileError("body", "must be a JSON object")
    unknown = set(data) - set(EDITABLE)
    if unknown:
        raise ProfileError(sorted(unknown)[0], f"not an editable field; editable: {', '.join(EDITABLE)}")
    cleaned = {}
    for field, value in data.items():
        if field in TEXT_LIMITS:
            cleaned[field] = _clean_text(field, value, TEXT_LIMITS[field], multiline=field == "bio")
        elif field in LIST_FIELDS:
            cleaned[field] = _clean_list(field, value)
        elif field == "links":
            cleaned[field] = _clean_links(value)
        elif field == "visibility":
            if value not in VISIBILITIES:
                raise ProfileError(field, f"one of {', '.join(VISIBILITIES)}")
            cleaned[field] = value
        elif field == "private_fields":
            if not isinstance(value, list) or not set(value) <= set(HIDEABLE_FIELDS):
                raise ProfileError(field, f"a list of some of {', '.join(HIDEABLE_FIELDS)}")
            cleaned[field] = sorted(set(value))
        elif field == "leaderboard":
            if not isinstance(value, bool):
                raise ProfileError(field, "true or false")
            cleaned[field] = value
    for field, value in cleaned.items():
        setattr(profile, field, value)
    profile.updated_at = utcnow()


def tag_key(text: str) -> str:
    """The form a tag is searched by: case- and spacing-insensitive."""
    return " ".join(text.casefold().split())[:64]


def tags_of(profile: Profile) -> set[tuple[str, str]]:
    return {(kind.rstrip("s"), tag_key(item)) for kind in LIST_FIELDS for item in getattr(profile, kind) or ()}


def render_bio(text: str) -> str:
    """The bio as safe HTML: Markdown, then only harmless tags, attributes and URL schemes."""
    if not text:
        return ""
    html = markdown.markdown(text, extensions=["sane_lists"], output_format="html")
    return nh3.clean(
        html, tags=BIO_TAGS, attributes=BIO_ATTRIBUTES, url_schemes=URL_SCHEMES, link_rel="nofollow noopener ugc"
    )


def update_profile(db, username: str, patch: dict) -> Profile:
    """Apply a patch to a member's profile (made at their first edit), re-index its tags, commit.

    Raises :class:`ProfileError` with the session rolled back; the API and the
    profile page both edit through here.
    """
    profile = db.get(Profile, username)
    if profile is None:
        profile = default_profile(username)
        db.add(profile)
    try:
        apply_patch(profile, patch)
    except ProfileError:
        db.rollback()
        raise
    db.flush()
    db.execute(delete(Tag).where(Tag.username == username))
    db.add_all(Tag(username=username, kind=kind, key=key) for kind, key in sorted(tags_of(profile)))
    db.commit()
    return profile
