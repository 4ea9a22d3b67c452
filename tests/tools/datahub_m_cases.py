#!/usr/bin/env python3
"""Reads DataHub's Power BI M parser tests (metadata-ingestion/tests/integration/powerbi/
test_m_parser.py, a public catalog's own suite of real-world M expressions) and prints their
cases as JSON for tests/unit/test_mlineage.c, which compares pbiport's M lineage with them.

    datahub_m_cases.py PATH   ->   {"expressions": N, "cases": [case, ...]}

A case is one test function: {"name", "m", "params" {name: M text}, "expect" [{"platform",
"name"}], "plain": bool, "why": text}. "plain" cases assert the source tables of one M
expression with DataHub's default settings; the others depend on DataHub's own configuration
(platform instances, DSN mappings, native query parsing off), mock its parser, are marked
xfail, or assert no tables. The file is read with the ast module only: nothing of it runs.
Standard library only."""
import ast
import json
import sys

URN = "urn:li:dataset:(urn:li:dataPlatform:"


def urn_parts(urn):
    """urn:li:dataset:(urn:li:dataPlatform:mssql,db.dbo.t,PROD) -> ("mssql", "db.dbo.t")"""
    body = urn[len(URN):]
    platform, _, rest = body.partition(",")
    name, _, _env = rest.rpartition(",")
    return platform, name


def is_m(text):
    return isinstance(text, str) and ("let" in text or "(" in text) and "urn:li:" not in text


def literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def cases_of(tree):
    queries = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "M_QUERIES" for t in node.targets):
            queries = literal(node.value) or []
    out = []
    texts = set(queries)
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("test_"):
            continue
        calls = {ast.unparse(n.func).rsplit(".", 1)[-1] for n in ast.walk(fn) if isinstance(n, ast.Call)}
        if not calls & {"get_upstream_tables", "get_data_platform_tables_with_dummy_table"}:
            continue   # tests of DataHub's syntax tree, not of source tables
        exprs, urns, params, why = [], [], {}, []
        for deco in fn.decorator_list:
            text = ast.unparse(deco)
            if "xfail" in text:
                why.append("xfail in DataHub")
            if "patch" in text:
                why.append("mocks DataHub's parser")
        for node in ast.walk(fn):
            if (isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "M_QUERIES"
                    and isinstance(literal(node.slice), int)):
                exprs.append(queries[literal(node.slice)])
            elif isinstance(node, ast.Assign) and is_m(literal(node.value)) and "\n" in literal(node.value):
                exprs.append(literal(node.value))
                texts.add(literal(node.value))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(URN):
                urns.append(node.value)
            elif isinstance(node, ast.keyword) and node.arg == "parameters":
                params = literal(node.value) or {}
            elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("get_default_instances") and (
                    node.args or node.keywords):
                why.append("DataHub configuration: " + ast.unparse(node)[:80])
            elif isinstance(node, ast.Assign) and any(ast.unparse(t).startswith("config.native_query_parsing")
                                                      for t in node.targets) and literal(node.value) is False:
                why.append("native query parsing off")
            elif isinstance(node, ast.Assign) and any(ast.unparse(t) == "config.m_query_parse_timeout"
                                                      for t in node.targets):
                why.append("a parse timeout")
        if not exprs:
            continue
        # M text given as a parameter value: DataHub passes the raw value
        mparams = {k: json.dumps(v) for k, v in params.items() if isinstance(k, str) and isinstance(v, str)}
        expect = [dict(zip(("platform", "name"), urn_parts(u))) for u in urns]
        if not expect:
            why.append("asserts no source table")
        if len(exprs) > 1 and len(exprs) == len(expect):
            # a loop over M_QUERIES[...] paired with expected_tables[...]
            for i, (m, e) in enumerate(zip(exprs, expect)):
                out.append({"name": "%s[%d]" % (fn.name, i), "m": m, "params": mparams, "expect": [e],
                            "plain": not why, "why": "; ".join(why)})
            continue
        if len(exprs) > 1:
            why.append("several expressions")
        out.append({"name": fn.name, "m": exprs[0], "params": mparams, "expect": expect, "plain": not why,
                    "why": "; ".join(why)})
    return {"expressions": len(texts), "cases": out}


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        tree = ast.parse(f.read())
    json.dump(cases_of(tree), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
