"""Alembic environment of the community service's database.

The service passes its engine in ``config.attributes["engine"]``; from a shell,
``alembic -c hub/community/migrations/alembic.ini ...`` uses ``LEVA_COMMUNITY_DB_URL``
(or the default SQLite file under ``LEVA_STATE_DIR``).
"""

from alembic import context

from hub.community.models import Base

config = context.config


def engine():
    engine = config.attributes.get("engine")
    if engine is None:
        from hub.community.store import make_engine
        from hub.settings import load_settings

        engine = make_engine(load_settings().community_db_url)
    return engine


with engine().connect() as connection:
    # SQLite cannot ALTER most things in place: batch mode copies the table instead
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
