"""The bank's standard groups, which lanes in the shipped processes name.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GROUPS = [
    # key, 中文, English, supervisor group
    ("credit_reviewer", "信贷审核员", "Credit reviewer", "credit_supervisor"),
    ("risk_reviewer", "风险审核员", "Risk reviewer", "risk_supervisor"),
    ("compliance_reviewer", "合规审核员", "Compliance reviewer", "compliance_supervisor"),
    ("credit_supervisor", "信贷主管", "Credit supervisor", None),
    ("risk_supervisor", "风险主管", "Risk supervisor", None),
    ("compliance_supervisor", "合规主管", "Compliance supervisor", None),
    ("branch_manager", "支行行长", "Branch manager", None),
    ("credit_committee", "信贷审批委员会", "Credit committee", None),
    ("card_center", "信用卡中心", "Card center", None),
    ("process_owner", "流程负责人", "Process owner", None),
    ("admin", "系统管理员", "Administrator", None),
]

groups = sa.table(
    "groups",
    sa.column("key", sa.String),
    sa.column("name_zh", sa.String),
    sa.column("name_en", sa.String),
    sa.column("supervisor_key", sa.String),
)


def upgrade() -> None:
    op.bulk_insert(
        groups,
        [dict(key=k, name_zh=zh, name_en=en, supervisor_key=sup) for k, zh, en, sup in GROUPS],
    )


def downgrade() -> None:
    keys = [g[0] for g in GROUPS]
    op.execute(groups.delete().where(groups.c.key.in_(keys)))
