"""OpenAPI schemas of the API's msgspec Structs.

Litestar's own Struct plugin (2.25) tests ``field.default in {NODEFAULT, UNSET}``, which raises
``TypeError: unhashable type: 'list'`` for the model's ``Selector`` and ``Campaign``;
:class:`StructDefaultsPlugin` is the same with an identity test, and goes before it. The
component schemas it yields are then replaced by msgspec's own (:func:`exact_components`), so
the published schema is the one requests are validated with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.plugins.core._msgspec import kwarg_definition_from_field
from litestar.types.empty import Empty
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import OpenAPI, Schema


def _default(field: msgspec.inspect.Field) -> Any:
    if field.default is msgspec.NODEFAULT or field.default is msgspec.UNSET:
        return Empty
    return field.default


class StructDefaultsPlugin(StructSchemaPlugin):
    def to_openapi_schema(self, field_definition: FieldDefinition,
                          schema_creator: SchemaCreator) -> Schema:
        type_hints = field_definition.get_type_hints(include_extras=True, resolve_generics=True)
        info = msgspec.inspect.type_info(field_definition.type_)
        assert isinstance(info, msgspec.inspect.StructType)
        properties = {}
        for field in info.fields:
            kwargs: dict[str, Any] = {}
            if kwarg := kwarg_definition_from_field(field)[0]:
                kwargs["kwarg_definition"] = kwarg
            properties[field.encode_name] = FieldDefinition.from_annotation(
                annotation=type_hints[field.name], name=field.encode_name,
                default=_default(field), **kwargs)
        required = [f.encode_name for f in info.fields if self._is_field_required(field=f)]
        if info.tag_field:
            properties[info.tag_field] = FieldDefinition.from_annotation(Literal[info.tag])
            required.append(info.tag_field)
        return schema_creator.create_component_schema(
            field_definition, required=sorted(required), property_fields=properties)


REF_TEMPLATE = "#/components/schemas/{name}"


def exact_components(types: Iterable[Any],
                     extra: Mapping[str, Mapping[str, Any]] | None = None,
                     ) -> dict[str, dict[str, Any]]:
    """The JSON schemas of ``types`` (msgspec Structs and enums) and of everything they hold, as
    msgspec itself validates them: every bound on nested strings and lists, ``minimum: 0``,
    ``additionalProperties: false`` for Structs refusing unknown fields, date-times that need an
    offset. Litestar's own schemas (2.25) drop those (a falsy ``ge`` is skipped, constraints
    of list items and dict values are lost), so the API would accept less than it documents.

    ``extra`` is merged into the named components, key by key (``{"Selector": {"properties":
    {"districts": {"items": {"enum": [...]}}}}}``): what only the running configuration knows.
    """
    _, components = msgspec.json.schema_components(list(types), ref_template=REF_TEMPLATE)
    for name, more in (extra or {}).items():
        _merge(components[name], more)
    return components


def _merge(target: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def use_components(openapi: OpenAPI, components: Mapping[str, dict[str, Any]]) -> None:
    """Replace the component schemas of ``openapi`` with ``components`` (plain JSON schemas;
    Litestar renders dictionaries as they are)."""
    if openapi.components.schemas is None:
        openapi.components.schemas = {}
    schemas = cast("dict[str, Any]", openapi.components.schemas)
    schemas.update(components)
