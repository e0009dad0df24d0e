"""The OpenAPI 3.1 document of the server, written by hand to describe exactly what the
handlers accept and answer (schemathesis fuzzes the server from it in the tests)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["OPENAPI", "OPENAPI_JSON"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Bad request: invalid JSON, unequal column lengths, wrong value types",
        401: "Missing or invalid bearer token (when feature_server.auth is configured)",
        404: "Unknown feature view, feature or feature service",
        413: "Body larger than max_body_bytes, or more rows than max_entities_per_request",
        422: "Body does not match the schema (or unknown push source)",
        503: "The online store or the registry is unreachable; retry later",
        504: "The request ran longer than request_timeout_seconds",
    }
    return {
        str(s): {
            "description": reasons[s],
            "content": {"application/json": {"schema": _ERROR}},
        }
        for s in statuses
    }


def _json_body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_NULL_OK = {
    "description": "Done; the body is JSON `null`",
    "content": {"application/json": {"schema": {"type": "null"}}},
}
_WRITE_ERRORS = (400, 401, 404, 413, 422, 503, 504)

_MATERIALIZE_PARAMS = [
    {
        "name": "async",
        "in": "query",
        "required": False,
        "description": "Start the job in the background and answer 202 at once (also 1/0, "
        "any case). The body is validated first: a bad request still answers 4xx.",
        "schema": {"type": "boolean", "default": False},
    },
    {
        "name": "force",
        "in": "query",
        "required": False,
        "description": "Start even if one of the views is already being materialized by this "
        "server (instead of answering 409)",
        "schema": {"type": "boolean", "default": False},
    },
]


def _materialize_responses() -> dict[str, Any]:
    return {
        "200": _NULL_OK,
        "202": {
            "description": "With `async=true`: the job started in the background",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/MaterializeAccepted"}}
            },
        },
        "409": {
            "description": "A view is already being materialized by this server "
            "(`force=true` starts anyway)",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/MaterializeConflict"}}
            },
        },
        **_errors(400, 401, 404, 413, 422, 503),
    }


_COLUMNS = {
    "type": "object",
    "description": "Column-oriented rows: column name → array of values (equal lengths)",
    "additionalProperties": {"type": "array", "items": {}},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Repast feature server",
        "version": "0.1.0",
        "description": "Feast-compatible feature server API (request and response JSON as "
        "Feast's Python feature server).",
    },
    "paths": {
        "/get-online-features": {
            "post": {
                "operationId": "getOnlineFeatures",
                "summary": "Latest feature values per entity row",
                "requestBody": _json_body("GetOnlineFeaturesRequest"),
                "responses": {
                    "200": {
                        "description": "One result per column: join keys first, then the "
                        "features in request order",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/OnlineFeaturesResponse"}
                            }
                        },
                    },
                    **_errors(400, 401, 404, 413, 422, 503, 504),
                },
            }
        },
        "/push": {
            "post": {
                "operationId": "push",
                "summary": "Write rows to every feature view fed by a push source",
                "requestBody": _json_body("PushRequest"),
                "responses": {
                    "200": {"description": "Written; empty body"},
                    **_errors(*_WRITE_ERRORS),
                },
            }
        },
        "/write-to-online-store": {
            "post": {
                "operationId": "writeToOnlineStore",
                "summary": "Write rows of one feature view to the online store",
                "requestBody": _json_body("WriteToOnlineStoreRequest"),
                "responses": {"200": _NULL_OK, **_errors(*_WRITE_ERRORS)},
            }
        },
        "/materialize": {
            "post": {
                "operationId": "materialize",
                "summary": "Load offline rows in [start_ts, end_ts] into the online store",
                "parameters": _MATERIALIZE_PARAMS,
                "requestBody": _json_body("MaterializeRequest"),
                "responses": _materialize_responses(),
            }
        },
        "/materialize-incremental": {
            "post": {
                "operationId": "materializeIncremental",
                "summary": "Materialize from each view's last materialized time to end_ts",
                "parameters": _MATERIALIZE_PARAMS,
                "requestBody": _json_body("MaterializeIncrementalRequest"),
                "responses": _materialize_responses(),
            }
        },
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "200 when the registry is loaded and the online store answers",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Healthy",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                        },
                    },
                    "503": {
                        "description": "Unhealthy",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                        },
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(401),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(401),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                # Feast's shape: a JSON string whose text is the JSON document below.
                "type": "string",
                "description": "A JSON string holding a JSON document: Feast's `module`, "
                "`class` and `message` (what Feast's Python client raises) and Repast's "
                "`error` and `detail`",
                "contentMediaType": "application/json",
                "contentSchema": {
                    "type": "object",
                    "required": ["module", "class", "message", "error", "detail"],
                    "properties": {
                        "module": {"type": "string", "const": "feast.errors"},
                        "class": {"type": "string", "description": "A feast.errors class"},
                        "message": {"type": "string", "description": "Same as detail"},
                        "error": {"type": "string", "description": "Error kind"},
                        "detail": {"type": "string", "description": "What was wrong, and where"},
                        "request_id": {"type": "string", "description": "On a 5xx"},
                    },
                },
            },
            "GetOnlineFeaturesRequest": {
                "type": "object",
                "required": ["entities"],
                "properties": {
                    "entities": _COLUMNS,
                    "features": {
                        "type": "array",
                        "items": {"type": "string", "description": "`view:feature`"},
                    },
                    "feature_service": {"type": ["string", "null"]},
                    "full_feature_names": {"type": "boolean", "default": False},
                    "include_feature_view_version_metadata": {"type": "boolean", "default": False},
                },
            },
            "OnlineFeaturesResponse": {
                "type": "object",
                "required": ["results", "metadata"],
                "properties": {
                    "metadata": {
                        "type": "object",
                        "required": ["feature_names"],
                        "properties": {
                            "feature_names": {"type": "array", "items": {"type": "string"}},
                            "feature_view_metadata": {
                                "description": "With include_feature_view_version_metadata: "
                                "each feature view read, once (Repast keeps no versions, and "
                                "Feast omits a version of 0)",
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string"}},
                                },
                            },
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["values", "statuses", "event_timestamps"],
                            "properties": {
                                "values": {"type": "array", "items": {}},
                                "statuses": {
                                    "type": "array",
                                    "items": {
                                        "type": "string",
                                        "enum": [
                                            "INVALID",
                                            "PRESENT",
                                            "NULL_VALUE",
                                            "NOT_FOUND",
                                            "OUTSIDE_MAX_AGE",
                                        ],
                                    },
                                },
                                "event_timestamps": {
                                    "type": "array",
                                    "items": {"type": "string", "format": "date-time"},
                                },
                            },
                        },
                    },
                },
            },
            "PushRequest": {
                "type": "object",
                "required": ["push_source_name", "df"],
                "properties": {
                    "push_source_name": {"type": "string"},
                    "df": _COLUMNS,
                    "to": {
                        "type": "string",
                        "enum": ["online", "offline", "online_and_offline"],
                        "default": "online",
                    },
                    "allow_registry_cache": {"type": "boolean"},
                    "transform_on_write": {"type": "boolean"},
                },
            },
            "WriteToOnlineStoreRequest": {
                "type": "object",
                "required": ["feature_view_name", "df"],
                "properties": {
                    "feature_view_name": {"type": "string"},
                    "df": _COLUMNS,
                    "allow_registry_cache": {"type": "boolean"},
                    "transform_on_write": {"type": "boolean"},
                },
            },
            "MaterializeRequest": {
                "type": "object",
                "properties": {
                    "start_ts": {"type": "string", "format": "date-time"},
                    "end_ts": {"type": "string", "format": "date-time"},
                    "feature_views": {"type": ["array", "null"], "items": {"type": "string"}},
                    "disable_event_timestamp": {"type": "boolean", "default": False},
                },
            },
            "MaterializeIncrementalRequest": {
                "type": "object",
                "required": ["end_ts"],
                "properties": {
                    "end_ts": {"type": "string", "format": "date-time"},
                    "feature_views": {"type": ["array", "null"], "items": {"type": "string"}},
                },
            },
            "MaterializeAccepted": {
                "type": "object",
                "required": ["status", "feature_views"],
                "properties": {
                    "status": {"type": "string", "enum": ["accepted"]},
                    "feature_views": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "The views the job materializes",
                    },
                },
            },
            "MaterializeConflict": {
                "type": "object",
                "required": ["error", "feature_views"],
                "properties": {
                    "error": {"type": "string", "description": "Which views are busy"},
                    "feature_views": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "The requested views already being materialized",
                    },
                },
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "unhealthy"]},
                    "project": {"type": "string"},
                    "registry_version": {"type": "string"},
                    "registry_age_seconds": {"type": ["number", "null"]},
                    "registry_refresh_error": {"type": ["string", "null"]},
                    "problems": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
    "security": [{"bearer": []}],
}

OPENAPI_JSON = orjson.dumps(OPENAPI)
