"""OpenAPI schemas of msgspec Structs whose fields default to ``[]`` or ``{}``.

Litestar's own Struct plugin (2.25) tests ``field.default in {NODEFAULT, UNSET}``, which raises
``TypeError: unhashable type: 'list'`` for the model's ``Selector`` and ``Campaign``; this
plugin is the same with an identity test, and goes before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.plugins.core._msgspec import kwarg_definition_from_field
from litestar.types.empty import Empty
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema


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
