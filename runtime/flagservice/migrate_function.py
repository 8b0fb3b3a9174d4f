"""The migration function the deployment invokes before traffic shifts (a CDK Trigger).

It reads only the database settings, so it needs no cache configuration; an exception fails the
invocation and with it the deployment.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

from flagservice.adapters.database_secret import DatabaseAddress, database_conninfo
from flagservice.adapters.migrations import migrate

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    conninfo = database_conninfo(
        database_url=os.environ.get("DATABASE_URL"),
        secret_arn=os.environ.get("DB_SECRET_ARN"),
        address=DatabaseAddress.from_environ(os.environ),
    )
    applied = migrate(conninfo)
    logger.info("migrations applied", applied=applied)
    return {"applied": applied}
