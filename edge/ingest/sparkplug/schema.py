"""The Sparkplug B payload schema (spBv1.0), as the `protobuf` library's message classes.

The schema is the one the Sparkplug 3.0 specification defines (package
`org.eclipse.tahu.protobuf`, proto2): it is declared here as data and handed to protobuf's
descriptor pool, so protobuf (its upb parser) does all the wire-format work and no code is
generated or copied. Field numbers and types follow the specification; the tests decode
payloads written by the Eclipse Tahu JavaScript library to prove it.

Why not a Sparkplug package: the maintained ones pin paho-mqtt < 2 (which the tests and
benchmarks need at 2.x) and bring an MQTT client the gateway does not use; the one that
only ships the generated module pins protobuf 3.19 and is unmaintained.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.eclipse.tahu.protobuf"

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_TYPES = {"uint32": _F.TYPE_UINT32, "uint64": _F.TYPE_UINT64, "float": _F.TYPE_FLOAT,
          "double": _F.TYPE_DOUBLE, "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING,
          "bytes": _F.TYPE_BYTES}


class DataType(IntEnum):
    """Sparkplug datatypes (the specification's DataType enum)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTYSET = 20
    PROPERTYSETLIST = 21


# (name, number, label, type or ".Message", oneof index or None)
Field = tuple[str, int, int, str, int | None]

_VALUE_FIELDS: list[Field] = [  # Template.Parameter and PropertyValue share this shape
    ("int_value", 3, _OPTIONAL, "uint32", 0), ("long_value", 4, _OPTIONAL, "uint64", 0),
    ("float_value", 5, _OPTIONAL, "float", 0), ("double_value", 6, _OPTIONAL, "double", 0),
    ("boolean_value", 7, _OPTIONAL, "bool", 0), ("string_value", 8, _OPTIONAL, "string", 0),
]

# message path -> (fields, oneofs, extension ranges (start, end))
_MESSAGES: dict[str, tuple[list[Field], list[str], list[tuple[int, int]]]] = {
    "Payload": ([
        ("timestamp", 1, _OPTIONAL, "uint64", None),
        ("metrics", 2, _REPEATED, ".Payload.Metric", None),
        ("seq", 3, _OPTIONAL, "uint64", None),
        ("uuid", 4, _OPTIONAL, "string", None),
        ("body", 5, _OPTIONAL, "bytes", None),
    ], [], [(6, 536870912)]),
    "Payload.Template": ([
        ("version", 1, _OPTIONAL, "string", None),
        ("metrics", 2, _REPEATED, ".Payload.Metric", None),
        ("parameters", 3, _REPEATED, ".Payload.Template.Parameter", None),
        ("template_ref", 4, _OPTIONAL, "string", None),
        ("is_definition", 5, _OPTIONAL, "bool", None),
    ], [], [(6, 536870912)]),
    "Payload.Template.Parameter": ([
        ("name", 1, _OPTIONAL, "string", None), ("type", 2, _OPTIONAL, "uint32", None),
        *_VALUE_FIELDS,
        ("extension_value", 9, _OPTIONAL, ".Payload.Template.Parameter.ParameterValueExtension", 0),
    ], ["value"], []),
    "Payload.Template.Parameter.ParameterValueExtension": ([], [], [(1, 536870912)]),
    "Payload.DataSet": ([
        ("num_of_columns", 1, _OPTIONAL, "uint64", None),
        ("columns", 2, _REPEATED, "string", None),
        ("types", 3, _REPEATED, "uint32", None),
        ("rows", 4, _REPEATED, ".Payload.DataSet.Row", None),
    ], [], [(5, 536870912)]),
    "Payload.DataSet.DataSetValue": ([
        ("int_value", 1, _OPTIONAL, "uint32", 0), ("long_value", 2, _OPTIONAL, "uint64", 0),
        ("float_value", 3, _OPTIONAL, "float", 0), ("double_value", 4, _OPTIONAL, "double", 0),
        ("boolean_value", 5, _OPTIONAL, "bool", 0), ("string_value", 6, _OPTIONAL, "string", 0),
        ("extension_value", 7, _OPTIONAL,
         ".Payload.DataSet.DataSetValue.DataSetValueExtension", 0),
    ], ["value"], []),
    "Payload.DataSet.DataSetValue.DataSetValueExtension": ([], [], [(1, 536870912)]),
    "Payload.DataSet.Row": ([
        ("elements", 1, _REPEATED, ".Payload.DataSet.DataSetValue", None),
    ], [], [(2, 536870912)]),
    "Payload.PropertyValue": ([
        ("type", 1, _OPTIONAL, "uint32", None), ("is_null", 2, _OPTIONAL, "bool", None),
        *_VALUE_FIELDS,
        ("propertyset_value", 9, _OPTIONAL, ".Payload.PropertySet", 0),
        ("propertysets_value", 10, _OPTIONAL, ".Payload.PropertySetList", 0),
        ("extension_value", 11, _OPTIONAL, ".Payload.PropertyValue.PropertyValueExtension", 0),
    ], ["value"], []),
    "Payload.PropertyValue.PropertyValueExtension": ([], [], [(1, 536870912)]),
    "Payload.PropertySet": ([
        ("keys", 1, _REPEATED, "string", None),
        ("values", 2, _REPEATED, ".Payload.PropertyValue", None),
    ], [], [(3, 536870912)]),
    "Payload.PropertySetList": ([
        ("propertyset", 1, _REPEATED, ".Payload.PropertySet", None),
    ], [], [(2, 536870912)]),
    "Payload.MetaData": ([
        ("is_multi_part", 1, _OPTIONAL, "bool", None),
        ("content_type", 2, _OPTIONAL, "string", None),
        ("size", 3, _OPTIONAL, "uint64", None), ("seq", 4, _OPTIONAL, "uint64", None),
        ("file_name", 5, _OPTIONAL, "string", None), ("file_type", 6, _OPTIONAL, "string", None),
        ("md5", 7, _OPTIONAL, "string", None), ("description", 8, _OPTIONAL, "string", None),
    ], [], [(9, 536870912)]),
    "Payload.Metric": ([
        ("name", 1, _OPTIONAL, "string", None), ("alias", 2, _OPTIONAL, "uint64", None),
        ("timestamp", 3, _OPTIONAL, "uint64", None), ("datatype", 4, _OPTIONAL, "uint32", None),
        ("is_historical", 5, _OPTIONAL, "bool", None),
        ("is_transient", 6, _OPTIONAL, "bool", None), ("is_null", 7, _OPTIONAL, "bool", None),
        ("metadata", 8, _OPTIONAL, ".Payload.MetaData", None),
        ("properties", 9, _OPTIONAL, ".Payload.PropertySet", None),
        ("int_value", 10, _OPTIONAL, "uint32", 0), ("long_value", 11, _OPTIONAL, "uint64", 0),
        ("float_value", 12, _OPTIONAL, "float", 0), ("double_value", 13, _OPTIONAL, "double", 0),
        ("boolean_value", 14, _OPTIONAL, "bool", 0), ("string_value", 15, _OPTIONAL, "string", 0),
        ("bytes_value", 16, _OPTIONAL, "bytes", 0),
        ("dataset_value", 17, _OPTIONAL, ".Payload.DataSet", 0),
        ("template_value", 18, _OPTIONAL, ".Payload.Template", 0),
        ("extension_value", 19, _OPTIONAL, ".Payload.Metric.MetricValueExtension", 0),
    ], ["value"], []),
    "Payload.Metric.MetricValueExtension": ([], [], [(1, 536870912)]),
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="edge_sparkplug_b.proto", package=PACKAGE,
                                               syntax="proto2")
    made: dict[str, descriptor_pb2.DescriptorProto] = {}
    for path in sorted(_MESSAGES, key=lambda p: p.count(".")):  # parents before children
        fields, oneofs, extension_ranges = _MESSAGES[path]
        parent, _, name = path.rpartition(".")
        message = (made[parent].nested_type if parent else proto.message_type).add(name=name)
        made[path] = message
        for oneof in oneofs:
            message.oneof_decl.add(name=oneof)
        for start, end in extension_ranges:
            message.extension_range.add(start=start, end=end)
        for field_name, number, label, kind, oneof_index in fields:
            field = message.field.add(name=field_name, number=number, label=label)
            if kind.startswith("."):
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{PACKAGE}{kind}"
            else:
                field.type = _TYPES[kind]
            if oneof_index is not None:
                field.oneof_index = oneof_index
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
Payload: Any = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.Payload"))
