#!/usr/bin/env python3
"""Writes an ODCS v3 contract (JSON) with N tables x C columns for the tmdl benchmark.

usage: gen.py N [COLUMNS] > contract.json
Columns cycle through every logical type; every table has a key, descriptions and a
relationship to the previous table, so all template paths run."""
import json
import sys

TYPES = ["integer", "string", "number", "date", "timestamp", "boolean", "time", "string"]


def contract(ntables, ncols):
    schema = []
    for t in range(ntables):
        props = []
        for c in range(ncols):
            lt = TYPES[c % len(TYPES)]
            p = {
                "name": "id" if c == 0 else f"column {c:02d} {lt}",
                "physicalName": "ID" if c == 0 else f"COL_{c:02d}",
                "logicalType": lt,
                "description": f"Column {c} of table {t}.\nSecond line with \"quotes\".",
            }
            if c == 0:
                p.update(primaryKey=True, required=True)
            if lt == "number":
                p["physicalType"] = "NUMBER(12,2)" if c % 3 else "FLOAT"
            if c == 1 and t > 0:
                p["logicalType"] = "integer"
                p["relationships"] = [{"to": f"table_{t - 1:05d}.id", "type": "foreignKey"}]
            props.append(p)
        schema.append({
            "name": f"table_{t:05d}",
            "physicalName": f"TABLE_{t:05d}",
            "physicalType": "table" if t % 5 else "view",
            "description": f"Benchmark table {t}.",
            "properties": props,
        })
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": f"urn:pbiport:bench:{ntables}",
        "name": f"bench {ntables}",
        "version": "1.0.0",
        "status": "active",
        "servers": [{
            "server": "prod", "type": "snowflake", "account": "bench-acct",
            "database": "BENCH", "schema": "PUBLIC", "warehouse": "BENCH_WH",
        }],
        "schema": schema,
    }


if __name__ == "__main__":
    n = int(sys.argv[1])
    cols = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    json.dump(contract(n, cols), sys.stdout, indent=1)
    sys.stdout.write("\n")
