"""`/v1/models`: the served model and its aliases, as the SDK's `models.list()` reads them."""
from __future__ import annotations

from fastapi import APIRouter

from ..deps import CatalogDep, CurrentUser

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("")
def list_models(user: CurrentUser, catalog: CatalogDep):
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "reelforge"}
                                       for name in catalog.model_names]}
