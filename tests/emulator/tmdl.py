"""Minimal TMDL reader/writer for the emulator (Python 3 standard library only).

The emulator parses the TMDL parts of a semantic-model definition the way the real
service would refuse them: wrong indentation, an unterminated quote or fence, a name
that needs quoting, a child outside its parent, a duplicate column or a relationship
pointing at an unknown column fail with "<part path>:<line>: <reason>".

Public functions:
  parse_parts(parts)      dict path -> text  => model dict (tables, expressions, relationships)
  datasources_of(model)   => [{"type", "path", "parameters"}] found in M partitions/expressions
  write_parts(model)      structured fixture model => dict path -> text (a loadable definition)
  add_measure(parts, table, name, expression)   => new parts: a measure added "in Power BI"
  rename_column(parts, table, old, new)         => new parts: a column renamed "in Power BI"
The two edits raise EditError (a 400 of the control API) naming what is wrong.
"""

import functools
import re
import uuid

OBJECT_PARENTS = {
    # keyword -> kinds its parent must have (None: top level only)
    "table": (None,),
    "column": ("table",),
    "measure": ("table",),
    "partition": ("table",),
    "hierarchy": ("table",),
    "level": ("hierarchy",),
}

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# boolean properties (TMDL schema): written bare for true, ': true' / ': false' otherwise
BOOL_PROPS = {p.lower() for p in (
    "ForceUniqueNames", "DiscourageImplicitMeasures", "DiscourageReportMeasures", "DiscourageCompositeModels",
    "DisableSystemDefaultExpression", "IsHidden", "ShowAsVariationsOnly", "IsPrivate", "ExcludeFromModelRefresh",
    "SystemManaged", "ExcludeFromAutomaticAggregations", "IsDataTypeInferred", "IsUnique", "IsKey", "IsNullable",
    "IsDefaultLabel", "IsDefaultImage", "IsAvailableInMDX", "KeepUniqueRows", "IsNameInferred", "IsDefault",
    "RetainDataTillForceCalculate", "IsSimpleMeasure", "IsActive", "RelyOnReferentialIntegrity", "IncludeAll",
    "LegacyRedirects", "ReturnErrorValuesAsNull")}
MERGEABLE_ROOTS = ("table",)
REPEATABLE_UNNAMED = ("changedproperty", "calendarcolumngroup")  # 'word = value' objects that may repeat
REPEATABLE_PROPS = ("associatedcolumn",)  # list-valued properties written once per value  # partial declarations: one table may be spread over several places


class TmdlError(Exception):
    """A definition the service would refuse; str() is 'path:line: reason'."""

    def __init__(self, path, line, reason):
        super().__init__("%s:%d: %s" % (path, line, reason))
        self.path = path
        self.line = line
        self.reason = reason


class Node:
    __slots__ = ("kind", "name", "default", "props", "children", "line", "description", "depth")

    def __init__(self, kind, name, default, line, depth):
        self.kind = kind
        self.name = name
        self.default = default
        self.props = {}
        self.children = []
        self.line = line
        self.description = None
        self.depth = depth


def _depth(line):
    n = 0
    while n < len(line) and line[n] == "\t":
        n += 1
    return n


def _parse_name(text, path, lineno):
    """Returns (name, rest) from text starting at a name."""
    if text.startswith("'"):
        out = []
        i = 1
        while True:
            j = text.find("'", i)
            if j < 0:
                raise TmdlError(path, lineno, "unterminated quoted name")
            out.append(text[i:j])
            if j + 1 < len(text) and text[j + 1] == "'":
                out.append("'")
                i = j + 2
                continue
            return "".join(out), text[j + 1:]
    m = re.match(r"([^=]*?)\s*(=.*)?$", text)
    name = m.group(1).strip()
    rest = m.group(2) or ""
    if not name:
        raise TmdlError(path, lineno, "object name expected")
    if re.search(r"\s", name) or ":" in name or "'" in name:
        raise TmdlError(path, lineno, "name %r must be enclosed in single quotes" % name)
    return name, rest


def _unquote_value(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return v[1:-1].replace('""', '"')
    return v


# a line that is a property or child object, not the first line of an expression body
_PROP_LIKE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*\s*[:=]|///|(?:column|measure|partition|hierarchy|level|"
                        r"annotation|extendedProperty|changedProperty|variation|kpi|ref|member|tablePermission|"
                        r"columnPermission|calculationItem|calendarColumnGroup)\s)")


def _read_expression(lines, i, depth, first, path):
    """Reads the text after '=' on line i (0-based). Returns (text, next_index).
    A multi-line body sits two tabs deeper than the opening line (Power BI's output); one tab
    deeper is also accepted when that line cannot be a property (the docs' examples)."""
    lineno = i + 1
    head = first.strip()
    if head.startswith("```"):
        body = []
        j = i + 1
        while j < len(lines):
            if lines[j].strip() == "```":
                margin = _depth(lines[j])
                text = "\n".join(ln[margin:] if ln[:margin] == "\t" * margin else ln.lstrip("\t")
                                 for ln in body)
                return text, j + 1
            body.append(lines[j])
            j += 1
        raise TmdlError(path, lineno, "unterminated ``` expression block")
    if head:
        return head, i + 1
    k = i + 1
    while k < len(lines) and lines[k].strip() == "":
        k += 1
    if k < len(lines) and _depth(lines[k]) > depth + 1:
        threshold = depth + 1
    elif k < len(lines) and _depth(lines[k]) == depth + 1 and not _PROP_LIKE.match(lines[k].lstrip("\t")):
        threshold = depth
    else:
        raise TmdlError(path, lineno, "expression expected after '='")
    body = []
    j = i + 1
    while j < len(lines):
        ln = lines[j]
        if ln.strip() == "":
            body.append("")
            j += 1
            continue
        if _depth(ln) <= threshold:
            break
        body.append(ln)
        j += 1
    while body and body[-1] == "":
        body.pop()
    margin = min(_depth(ln) for ln in body if ln)
    return "\n".join(ln[margin:].rstrip() for ln in body), j


def _set_prop(node, word, value, path, lineno):
    if word.lower() in REPEATABLE_PROPS:
        node.props.setdefault(word, [])
        if isinstance(node.props[word], list):
            node.props[word].append(value)
        return
    if any(k.lower() == word.lower() for k in node.props if k != "__ref"):
        raise TmdlError(path, lineno, "property %r is set twice" % word)
    node.props[word] = value


def parse_document(path, text):
    """Parses one .tmdl file into a list of top-level Nodes."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    roots = []
    stack = []  # Node entries, increasing depth
    description = []
    i = 0
    while i < len(lines):
        line = lines[i]
        lineno = i + 1
        if line.strip() == "":
            i += 1
            continue
        d = _depth(line)
        rest = line[d:]
        if rest[0] in " \u00a0":
            raise TmdlError(path, lineno, "indentation must use tabs")
        while stack and stack[-1].depth >= d:
            stack.pop()
        parent = stack[-1] if stack else None
        expected = parent.depth + 1 if parent else 0
        if d > expected:
            raise TmdlError(path, lineno, "unexpected indentation (depth %d, expected at most %d)"
                            % (d, expected))
        if rest.startswith("///"):
            if not description:
                desc_line = lineno
            description.append(rest[3:].strip())
            i += 1
            continue
        m = IDENT_RE.match(rest)
        if not m:
            raise TmdlError(path, lineno, "unexpected text %r" % rest[:40])
        word = m.group(0)
        after = rest[m.end():]
        declares = not (after.strip() == "" or after.startswith(":") or after.lstrip().startswith("="))
        if description and (not declares or word == "ref"):
            raise TmdlError(path, desc_line, "description (///) is not followed by an object declaration")
        if word == "ref" and after.startswith(" "):
            m2 = IDENT_RE.match(after.lstrip())
            if not m2:
                raise TmdlError(path, lineno, "object type expected after 'ref'")
            kind = m2.group(0)
            name, tail = _parse_name(after.lstrip()[m2.end():].strip(), path, lineno)
            if tail.strip():
                raise TmdlError(path, lineno, "unexpected text after ref name")
            node = Node(kind, name, None, lineno, d)
            node.props["__ref"] = True
            _attach(node, parent, roots, path, stack)
            stack.append(node)
            description = []
            i += 1
            continue
        if after.strip() == "":
            if parent is None and word not in ("database", "model"):
                raise TmdlError(path, lineno, "property %r outside an object" % word)
            node = Node(word, None, None, lineno, d)
            if parent is not None:
                _set_prop(parent, word, True, path, lineno)
                parent.children.append(node)
            else:
                roots.append(node)
            stack.append(node)
            description = []
            i += 1
            continue
        if after.startswith(":"):
            if parent is None:
                raise TmdlError(path, lineno, "property %r outside an object" % word)
            value = _unquote_value(after[1:])
            if word.lower() in BOOL_PROPS and value.lower() not in ("true", "false"):
                raise TmdlError(path, lineno, "%s must be true or false, not %r" % (word, value))
            _set_prop(parent, word, value if word.lower() not in BOOL_PROPS else value.lower() == "true",
                      path, lineno)
            i += 1
            continue
        if after.lstrip().startswith("="):
            if parent is None:
                raise TmdlError(path, lineno, "property %r outside an object" % word)
            expr, i = _read_expression(lines, i, d, after.lstrip()[1:], path)
            if word.lower() not in REPEATABLE_UNNAMED:
                _set_prop(parent, word, expr, path, lineno)
            # unnamed objects with a default value may carry children (calendarColumnGroup = year)
            node = Node(word, None, expr, lineno, d)
            parent.children.append(node)
            stack.append(node)
            continue
        if not after.startswith((" ", "\t")):
            raise TmdlError(path, lineno, "unexpected text %r" % rest[:40])
        name, tail = _parse_name(after.strip(), path, lineno)
        tail = tail.strip()
        node = Node(word, name, None, lineno, d)
        if description:
            node.description = "\n".join(description)
            description = []
        if tail:
            if not tail.startswith("="):
                raise TmdlError(path, lineno, "unexpected text after name: %r" % tail[:40])
            node.default, i = _read_expression(lines, i, d, tail[1:], path)
        else:
            i += 1
        _attach(node, parent, roots, path, stack)
        stack.append(node)
    if description:
        raise TmdlError(path, desc_line, "description (///) is not followed by an object declaration")
    return roots


def _attach(node, parent, roots, path, stack):
    allowed = OBJECT_PARENTS.get(node.kind)
    # translations/perspectives repeat object keywords in their own nesting
    free = any(n.kind in ("translations", "perspective") for n in stack)
    if allowed is not None and not free:
        pkind = parent.kind if parent is not None else None
        if pkind not in allowed:
            where = ("inside %s" % pkind) if pkind else "at top level"
            raise TmdlError(path, node.line, "%s %r is not allowed %s" % (node.kind, node.name, where))
    siblings = roots if parent is None else parent.children
    if node.name is not None and not (parent is None and node.kind in MERGEABLE_ROOTS):
        for other in siblings:
            if other.kind == node.kind and other.name is not None and other.name.lower() == node.name.lower() \
                    and bool(other.props.get("__ref")) == bool(node.props.get("__ref")):
                raise TmdlError(path, node.line, "duplicate %s %r (first at line %d)" % (node.kind, node.name,
                                                                                       other.line))
    siblings.append(node)


def _split_ref(ref):
    """'Sales'.'Product Key' or Sales.ProductKey -> (table, column)."""
    parts = []
    i = 0
    cur = []
    while i < len(ref):
        c = ref[i]
        if c == "'":
            j = i + 1
            while True:
                k = ref.find("'", j)
                if k < 0:
                    return None
                cur.append(ref[j:k])
                if k + 1 < len(ref) and ref[k + 1] == "'":
                    cur.append("'")
                    j = k + 2
                    continue
                i = k + 1
                break
            continue
        if c == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    if len(parts) != 2:
        return None
    return parts[0].strip(), parts[1].strip()


def parse_parts(parts):
    """parts: dict path -> text of every definition/*.tmdl part. Returns the model dict."""
    tables = {}
    order = []
    expressions = []
    relationships = []
    model_name = None
    for path in sorted(parts):
        if not path.endswith(".tmdl"):
            continue
        for node in parse_document(path, parts[path]):
            if node.kind == "table":
                key = node.name.lower()
                if key not in tables:
                    tables[key] = {"name": node.name, "description": node.description,
                                   "isHidden": bool(node.props.get("isHidden")),
                                   "columns": [], "measures": [], "partitions": [],
                                   "_path": path, "_props": set()}
                    order.append(key)
                props = {k.lower() for k in node.props if k != "__ref"}
                twice = props & tables[key]["_props"]
                if twice:
                    raise TmdlError(path, node.line, "property %r of table %r is set twice"
                                    % (sorted(twice)[0], node.name))
                tables[key]["_props"] |= props
                _merge_table(tables[key], node, path)
            elif node.kind == "expression":
                expressions.append({"name": node.name, "expression": node.default or "",
                                    "description": node.description})
            elif node.kind == "relationship":
                relationships.append({"name": node.name,
                                      "fromColumn": node.props.get("fromColumn", ""),
                                      "toColumn": node.props.get("toColumn", ""),
                                      "_path": path, "_line": node.line})
            elif node.kind == "model":
                model_name = node.name
    for key in order:
        t = tables[key]
        for p in t["partitions"]:
            if p["type"].lower() == "m" and not p.get("source"):
                raise TmdlError(t["_path"], p["_line"], "partition %r has no source expression" % p["name"])
    for r in relationships:
        for prop in ("fromColumn", "toColumn"):
            ref = _split_ref(r[prop]) if r[prop] else None
            if ref is None:
                raise TmdlError(r["_path"], r["_line"], "relationship %s: bad %s %r" % (r["name"], prop, r[prop]))
            t = tables.get(ref[0].lower())
            if t is None or not any(c["name"].lower() == ref[1].lower() for c in t["columns"]):
                raise TmdlError(r["_path"], r["_line"],
                                "relationship %s: %s refers to unknown column %r" % (r["name"], prop, r[prop]))
    out_tables = []
    for key in order:
        t = dict(tables[key])
        t.pop("_path", None)
        t.pop("_props", None)
        t["partitions"] = [{k: v for k, v in p.items() if not k.startswith("_")} for p in t["partitions"]]
        out_tables.append(t)
    return {"name": model_name, "tables": out_tables, "expressions": expressions,
            "relationships": [{k: v for k, v in r.items() if not k.startswith("_")} for r in relationships]}


def _merge_table(t, node, path):
    seen = {c["name"].lower() for c in t["columns"]} | {m["name"].lower() for m in t["measures"]}
    parts = {p["name"].lower() for p in t["partitions"]}
    for ch in node.children:
        if ch.kind == "partition":
            if ch.name.lower() in parts:
                raise TmdlError(path, ch.line, "duplicate partition %r in table %r" % (ch.name, t["name"]))
            parts.add(ch.name.lower())
        if ch.kind in ("column", "measure"):
            if ch.name.lower() in seen:
                raise TmdlError(path, ch.line, "duplicate %s %r in table %r" % (ch.kind, ch.name, t["name"]))
            seen.add(ch.name.lower())
        if ch.kind == "column":
            col = {"name": ch.name, "dataType": ch.props.get("dataType", ch.props.get("datatype", "string")),
                   "isHidden": bool(ch.props.get("isHidden"))}
            if ch.default is not None:
                col["expression"] = ch.default
                col["columnType"] = "Calculated"
            else:
                col["columnType"] = "Data"
            if "sourceColumn" in ch.props:
                col["sourceColumn"] = ch.props["sourceColumn"]
            if ch.description:
                col["description"] = ch.description
            t["columns"].append(col)
        elif ch.kind == "measure":
            if ch.default is None:
                raise TmdlError(path, ch.line, "measure %r has no expression" % ch.name)
            ms = {"name": ch.name, "expression": ch.default, "isHidden": bool(ch.props.get("isHidden"))}
            if ch.description:
                ms["description"] = ch.description
            if "formatString" in ch.props:
                ms["formatString"] = ch.props["formatString"]
            t["measures"].append(ms)
        elif ch.kind == "partition":
            if ch.default is None:
                raise TmdlError(path, ch.line, "partition %r needs a source type (e.g. '= m')" % ch.name)
            src = ch.props.get("source")
            t["partitions"].append({"name": ch.name, "type": ch.default.strip(),
                                    "mode": ch.props.get("mode", "import"),
                                    "source": src if isinstance(src, str) else None,
                                    "_line": ch.line})


# ---- data sources in M -------------------------------------------------------

_M_STRING = r'"((?:[^"]|"")*)"'
_M_ARG = r'\s*(' + r'"(?:[^"]|"")*"' + r'|#"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_.]*)\s*'
# connector function -> (the data source's type, as Fabric names the connection type, and the
# names of its leading arguments, which make the data source's path joined with ';'; a
# function without them (Google BigQuery) has its type as path)
SOURCE_FUNCS = {
    "Snowflake.Databases": ("Snowflake", ("server", "warehouse")),
    "Databricks.Catalogs": ("Databricks", ("host", "httpPath")),
    "DatabricksMultiCloud.Catalogs": ("DatabricksMultiCloud", ("host", "httpPath")),
    "Sql.Database": ("SQL", ("server", "database")),
    "PostgreSQL.Database": ("PostgreSQL", ("server", "database")),
    "AmazonRedshift.Database": ("AmazonRedshift", ("server", "database")),
    "MySQL.Database": ("MySql", ("server", "database")),
    "Oracle.Database": ("Oracle", ("server",)),
    "GoogleBigQuery.Database": ("GoogleBigQuery", ()),
}
_SRC_RES = {fn: re.compile(re.escape(fn) + r"\s*\(" + ",".join([_M_ARG] * len(args)) + (r"[,)]" if args else ""))
            for fn, (_, args) in SOURCE_FUNCS.items()}


def _m_literal(arg, params):
    if arg.startswith('"'):
        return arg[1:-1].replace('""', '"')
    name = arg[2:-1].replace('""', '"') if arg.startswith('#"') else arg
    return params.get(name)


def _parameters(model):
    out = {}
    for e in model.get("expressions", []):
        m = re.match(r"\s*" + _M_STRING, e.get("expression") or "")
        if m:
            out[e["name"]] = m.group(1).replace('""', '"')
    return out


@functools.lru_cache(maxsize=4096)
def _source_calls(text):
    """(function, (args...)) of every source call in one M text (cached: big tenants repeat them)."""
    out = []
    for fn, rx in _SRC_RES.items():
        if fn in text:
            out += [(fn, m.groups()) for m in rx.finditer(text)]
    return tuple(out)


def datasources_of(model):
    """The data-source references a model's M code resolves to, deduplicated."""
    params = _parameters(model)
    texts = [p.get("source") or "" for t in model.get("tables", []) for p in t.get("partitions", [])]
    texts += [e.get("expression") or "" for e in model.get("expressions", [])]
    out = []
    seen = set()
    for text in texts:
        for func, args in _source_calls(text):
            values = [_m_literal(a, params) for a in args]
            if any(v is None for v in values):
                continue
            typ, names = SOURCE_FUNCS[func]
            path = ";".join(values) if values else typ
            key = (typ.lower(), path.lower())
            if key in seen:
                continue
            seen.add(key)
            out.append({"type": typ, "path": path, "parameters": dict(zip(names, values))})
    return out


# ---- writer (fixture models -> definition parts) ------------------------------

def quote_name(name):
    if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        return name
    return "'" + name.replace("'", "''") + "'"


def _expr_lines(expr, depth):
    lines = expr.split("\n")
    if len(lines) == 1:
        return " " + lines[0], []
    return "", ["\t" * depth + ln if ln else "" for ln in lines]


def write_parts(model):
    """model: fixture-shaped dict (name, tables[columns, measures, partitions], expressions).
    Returns dict path -> text of a TMDL definition (without definition.pbism)."""
    parts = {"definition/database.tmdl": "database\n\tcompatibilityLevel: 1604\n",
             "definition/model.tmdl": "model Model\n\tculture: en-US\n\tdefaultPowerBIDataSourceVersion: powerBI_V3\n\n" +
             "".join("ref table %s\n" % quote_name(t["name"]) for t in model.get("tables", []))}
    for t in model.get("tables", []):
        out = ["table %s" % quote_name(t["name"])]
        for ms in t.get("measures", []):
            head, body = _expr_lines(ms["expression"], 3)
            out += ["", "\tmeasure %s =%s" % (quote_name(ms["name"]), head)] + body
        for c in t.get("columns", []):
            out += ["", "\tcolumn %s" % quote_name(c["name"]), "\t\tdataType: %s" % c.get("dataType", "string")]
            if c.get("isHidden"):
                out.append("\t\tisHidden")
            out.append("\t\tsourceColumn: %s" % c.get("sourceColumn", c["name"]))
        for p in t.get("partitions", []):
            out += ["", "\tpartition %s = m" % quote_name(p.get("name", t["name"])),
                    "\t\tmode: %s" % p.get("mode", "import"), "\t\tsource ="]
            out += ["\t\t\t\t" + ln if ln else "" for ln in p.get("source", "").split("\n")]
        parts["definition/tables/%s.tmdl" % t["name"].replace("/", "_")] = "\n".join(out) + "\n"
    if model.get("relationships"):
        out = []
        for r in model["relationships"]:
            out += ["relationship %s" % quote_name(r["name"]), "\tfromColumn: %s" % r["fromColumn"],
                    "\ttoColumn: %s" % r["toColumn"], ""]
        parts["definition/relationships.tmdl"] = "\n".join(out)
    if model.get("expressions"):
        out = []
        for e in model["expressions"]:
            head, body = _expr_lines(e["expression"], 2)
            out += ["expression %s =%s" % (quote_name(e["name"]), head)] + body + [""]
        parts["definition/expressions.tmdl"] = "\n".join(out)
    return parts


# ---- edits made "in Power BI" (POST /_emulator/models/{id}/edit) ----------------

class EditError(Exception):
    """An edit the control API refuses with 400; str() says why."""


def _check_name(value, what):
    if not isinstance(value, str) or not value.strip():
        raise EditError("%s must be a non-empty string" % what)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise EditError("%s must not contain control characters" % what)
    if len(value) > 512:
        raise EditError("%s is longer than 512 characters" % what)


def _table_place(parts, table):
    """(path, lines, first, end) of the top-level declaration of table: lines[first:end] are its
    lines (0-based, trailing blank lines excluded). Raises EditError when there is none."""
    for path in sorted(parts):
        if not path.startswith("definition/") or not path.endswith(".tmdl"):
            continue
        roots = parse_document(path, parts[path])
        for i, node in enumerate(roots):
            if node.kind != "table" or node.props.get("__ref") or node.name.lower() != table.lower():
                continue
            lines = parts[path].replace("\r\n", "\n").split("\n")
            end = len(lines)
            if i + 1 < len(roots):
                end = roots[i + 1].line - 1
                while end > 0 and lines[end - 1].startswith("///"):
                    end -= 1  # the next object's description
            while end > node.line and not lines[end - 1].strip():
                end -= 1
            return path, lines, node.line - 1, end, node
    raise EditError("the model has no table %r" % table)


def _member_names(node):
    return {c.name.lower(): c for c in node.children if c.kind in ("column", "measure", "hierarchy") and c.name}


def add_measure(parts, table, name, expression):
    """A measure as Power BI's web modeling adds it: at the end of its table, with a lineage tag."""
    _check_name(table, "'table'")
    _check_name(name, "'name'")
    if not isinstance(expression, str) or not expression.strip():
        raise EditError("'expression' must be a non-empty string")
    path, lines, first, end, node = _table_place(parts, table)
    taken = _member_names(node).get(name.lower())
    if taken is not None:
        raise EditError("table %r already has a %s named %r" % (node.name, taken.kind, taken.name))
    for p in parts:
        if p.startswith("definition/") and p.endswith(".tmdl"):
            for root in parse_document(p, parts[p]):
                for c in root.children if root.kind == "table" else ():
                    if c.kind == "measure" and c.name.lower() == name.lower():
                        raise EditError("table %r already has a measure named %r" % (root.name, c.name))
    body = expression.replace("\r\n", "\n").strip("\n").split("\n")
    if len(body) == 1:
        new = ["", "\tmeasure %s = %s" % (quote_name(name), body[0].strip())]
    else:
        new = ["", "\tmeasure %s =" % quote_name(name)] + ["\t\t\t" + ln if ln.strip() else "" for ln in body]
    new.append("\t\tlineageTag: %s" % uuid.uuid4())
    out = dict(parts)
    out[path] = "\n".join(lines[:end] + new + lines[end:]).rstrip("\n") + "\n"
    parse_parts({k: v for k, v in out.items() if k.startswith("definition/")})
    return out


def _ref_re(table):
    """A DAX reference to a column of table: 'Table'[...] or Table[...] (group 1 is the table)."""
    quoted = "'" + re.escape(table.replace("'", "''")) + "'"
    names = [quoted] + ([re.escape(table)] if IDENT_RE.fullmatch(table) else [])
    return "(?i)(" + "|".join(names) + r")\s*\["


def rename_column(parts, table, old, new):
    """A column renamed as Power BI renames it: its declaration, and the references to it in
    relationships, sort-by columns, hierarchy levels and DAX (qualified anywhere, [Column] in
    its own table's measures and calculated columns). Its properties, annotations and lineage
    tag stay."""
    _check_name(table, "'table'")
    _check_name(old, "'from'")
    _check_name(new, "'to'")
    path, lines, first, end, node = _table_place(parts, table)
    members = _member_names(node)
    col = members.get(old.lower())
    if col is None or col.kind != "column":
        raise EditError("table %r has no column %r" % (node.name, old))
    clash = members.get(new.lower())
    if clash is not None and clash is not col:
        raise EditError("table %r already has a %s named %r" % (node.name, clash.kind, clash.name))
    tname, cname = node.name, col.name
    decl = lines[col.line - 1]
    depth = _depth(decl)
    _, rest = _parse_name(decl[depth:][len("column"):].strip(), path, col.line)
    lines[col.line - 1] = "\t" * depth + "column " + quote_name(new) + (" " + rest.strip() if rest.strip() else "")
    out = dict(parts)
    out[path] = "\n".join(lines)
    col_re = re.escape(cname.replace("]", "]]"))
    qualified = re.compile(_ref_re(tname) + col_re + r"\]")
    bare = re.compile(r"(?i)(?<![\w'\]])\[" + col_re + r"\]")
    new_ref = new.replace("]", "]]")
    ref_value = re.compile(r"(?i)^(\s*(?:fromColumn|toColumn):\s*)(%s)\.(%s)\s*$"
                           % ("'" + re.escape(tname.replace("'", "''")) + "'|" + re.escape(tname),
                              "'" + re.escape(cname.replace("'", "''")) + "'|" + re.escape(cname)))
    for p in list(out):
        if not p.startswith("definition/") or not p.endswith(".tmdl"):
            continue
        text = qualified.sub(lambda m: m.group(1) + "[" + new_ref + "]", out[p])
        text = "\n".join(ref_value.sub(lambda m: m.group(1) + m.group(2) + "." + quote_name(new), ln)
                         for ln in text.split("\n"))
        out[p] = text
    # inside the table: sort-by columns, hierarchy levels, and [Column] in its DAX
    lines = out[path].split("\n")
    path2, lines2, first, end, node = _table_place(out, table)
    own = re.compile(r"(?i)^(\t\t+(?:sortByColumn|column):\s*)(%s)\s*$"
                     % ("'" + re.escape(cname.replace("'", "''")) + "'|" + re.escape(cname)))
    in_dax = False
    for i in range(first + 1, end):
        ln = lines[i]
        d = _depth(ln)
        if d == 1:
            head = ln.strip()
            in_dax = head.startswith("measure ") or (head.startswith("column ") and "=" in head)
            if in_dax and "=" in head:
                k = ln.index("=")
                lines[i] = ln[:k] + bare.sub("[" + new_ref + "]", ln[k:])
            continue
        if own.match(ln):
            lines[i] = own.sub(lambda m: m.group(1) + quote_name(new), ln)
            continue
        if in_dax and ln.strip() and not re.match(r"^\t\t(?:\w+\s*:|annotation\s|changedProperty\s*=)", ln):
            lines[i] = bare.sub("[" + new_ref + "]", ln)
    out[path] = "\n".join(lines).rstrip("\n") + "\n"
    parse_parts({k: v for k, v in out.items() if k.startswith("definition/")})
    return out
