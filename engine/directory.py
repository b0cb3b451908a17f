"""Who is acting: a user's name and groups, as the engine's access checks need them.

Decision: hosts (web, CLI, worker) resolve the person once into an `Actor`; engine functions
check membership against it and never look up sessions or cookies.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.models import Group, Membership, User

#: The engine itself (timers, workers, migrations) in audit records.
SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    username: str
    groups: frozenset[str] = frozenset()

    def in_group(self, key: str | None) -> bool:
        return key is not None and key in self.groups


SYSTEM_ACTOR = Actor(SYSTEM)


def actor_for(session: Session, username: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username, User.is_active))
    if user is None:
        raise NotFound(f"no active user `{username}`")
    return Actor(user.username, frozenset(user.group_keys))


def lane_lookup(session: Session) -> dict[str, str]:
    """Every spelling a lane may use for a group (key, Chinese or English name) → group key."""
    lookup: dict[str, str] = {}
    for group in session.scalars(select(Group)):
        for spelling in (group.key, group.name_zh, group.name_en):
            if spelling:
                lookup[spelling] = group.key
                lookup[spelling.lower()] = group.key
    return lookup


def ensure_group(session: Session, key: str, name_zh: str = "", name_en: str = "") -> Group:
    group = session.scalar(select(Group).where(Group.key == key))
    if group is None:
        group = Group(key=key, name_zh=name_zh, name_en=name_en)
        session.add(group)
        session.flush()
    return group


def add_user(session: Session, username: str, groups: list[str], display_name: str = "") -> User:
    """Create a user in existing groups (administration of passwords comes with the web layer)."""
    user = User(username=username, display_name=display_name or username)
    session.add(user)
    session.flush()
    for key in groups:
        group = session.scalar(select(Group).where(Group.key == key))
        if group is None:
            raise NotFound(f"no group `{key}`")
        session.add(Membership(user_id=user.id, group_id=group.id))
    session.flush()
    session.refresh(user)
    return user
