"""What every request body is built on, and the lenient twins it is validated with, at a
cost bounded by its size.

Two behaviours of pydantic make a small body expensive: refusing an unknown field builds
one error per field, and a missing field's error keeps a copy of the whole object it is
missing from. A 4 MB object of 300,000 unknown keys cost 1.4 s and 600 MB to refuse. So a
body is validated by a *lenient* twin of its model (``lenient``): every field may be
absent, and unknown fields are skipped (``extra="ignore"``) or, when there are few, kept
(``extra="allow"``); ``app.service.parsing`` then names what is missing or unknown. The
documented schema is the strict model's.
"""

from functools import cache
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo

Extra = Literal["ignore", "allow"]


class RequestModel(BaseModel):
    """A body, or part of one, that clients send: no field but the schema's."""

    model_config = ConfigDict(extra="forbid")

    # For a batch: the list field holding its rows (checked against the row limit
    # before the body is validated).
    rows_field: ClassVar[str | None] = None


@cache
def lenient(model: type[RequestModel], extra: Extra) -> type[RequestModel]:
    """A subclass of ``model`` whose required fields may be missing (``None``), whose
    unknown fields are ignored or kept (``extra``), and whose fields of request models
    take their lenient twins."""
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = _lenient_annotation(field.annotation, extra)
        if field.is_required() or annotation is not field.annotation:
            fields[name] = (annotation, FieldInfo.merge_field_infos(field, default=None))
    twin: type[RequestModel] = create_model(
        f"{model.__name__}{extra.title()}",
        __base__=model,
        __module__=model.__module__,
        __config__=None,
        **fields,
    )
    twin.model_config["extra"] = extra
    twin.model_rebuild(force=True)
    return twin


def _lenient_annotation(annotation: Any, extra: Extra) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, RequestModel):
        return lenient(annotation, extra)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, RequestModel):
            return list[lenient(item, extra)]  # type: ignore[misc]
    return annotation
