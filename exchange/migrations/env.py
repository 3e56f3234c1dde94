"""Alembic environment for the relay: runs on a connection handed over by the relay.

``exchange migrate`` and app start-up call :func:`exchange.database.migrate`, which
passes an open connection in ``config.attributes["connection"]``; offline mode
(``--sql``) renders SQL for the URL in ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from exchange.models import metadata

config = context.config


def run_offline() -> None:
    """Render SQL without a database."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate on the connection the relay handed over."""
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `exchange migrate`, not the alembic command")
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
