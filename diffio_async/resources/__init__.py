"""One module per API group; each method maps to exactly one endpoint."""

from .account import Account
from .api_keys import ApiKeys
from .generations import Generations
from .projects import Projects
from .usage import Usage
from .webhook_endpoints import Webhooks

__all__ = ["Account", "ApiKeys", "Generations", "Projects", "Usage", "Webhooks"]
