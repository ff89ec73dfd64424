"""Profiles, lesson progress, assignment results and badges

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=False),
        sa.Column("headline", sa.String(length=140), nullable=False),
        sa.Column("bio", sa.Text(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("interests", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("city", sa.String(length=80), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("private_fields", sa.JSON(), nullable=False),
        sa.Column("leaderboard", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_profiles")),
    )
    op.create_table(
        "profile_tags",
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["username"], ["profiles.username"], name=op.f("fk_profile_tags_username_profiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("username", "kind", "key", name=op.f("pk_profile_tags")),
    )
    op.create_index("ix_profile_tags_kind_key", "profile_tags", ["kind", "key"])
    op.create_table(
        "lesson_progress",
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("lesson", sa.String(length=255), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("cells_run", sa.Integer(), nullable=False),
        sa.Column("cells_total", sa.Integer(), nullable=False),
        sa.Column("executions", sa.Integer(), nullable=False),
        sa.Column("last_activity", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("username", "course_id", "lesson", name=op.f("pk_lesson_progress")),
    )
    op.create_table(
        "progress_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("lesson", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_events")),
    )
    op.create_index("ix_progress_events_username", "progress_events", ["username"])
    op.create_table(
        "assignment_results",
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("assignment", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("submission_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("username", "course_id", "assignment", name=op.f("pk_assignment_results")),
    )
    op.create_table(
        "badges",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("credential", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badges")),
        sa.UniqueConstraint("username", "course_id", name=op.f("uq_badges_username_course_id")),
    )


def downgrade() -> None:
    op.drop_table("badges")
    op.drop_table("assignment_results")
    op.drop_index("ix_progress_events_username", table_name="progress_events")
    op.drop_table("progress_events")
    op.drop_table("lesson_progress")
    op.drop_index("ix_profile_tags_kind_key", table_name="profile_tags")
    op.drop_table("profile_tags")
    op.drop_table("profiles")
