"""The SQL the read-only path must refuse, and the SQL it must keep answering, as data.

An attack is one statement (`sql`) and the refusal code every statement surface must answer with
(`Lake.query`, `POST /sql`, a corpus's `sql` from Python and `POST /v1/corpora`). `expr` is the same
attack as a `where` expression (hybrid search over HTTP, `matrix_search`, `ask`, truth rules), which those
surfaces refuse as `where_not_allowed` (`truth_rule_forbidden` for truth rules); without one, the
statement is put in `EXISTS (...)`.

Placeholders, filled by the tests: {root} the lake's folder, {catalog} its SQLite catalog, {data} its
data folder, {staged} an upload waiting in staging, {sidecar} an HNSW index file, {toml} lakehouse.toml,
{observer} an observer log file.
"""

from __future__ import annotations

import dataclasses
import itertools


@dataclasses.dataclass(frozen=True)
class Attack:
    id: str
    kind: str  # executor, ducklake, checkpoint, scanner, metadata, paths, files, statement
    sql: str
    code: str
    expr: str | None = None
    truth_code: str = "truth_rule_forbidden"  # sqlglot reads truth rules first: its refusals differ

    def where(self) -> str:
        return self.expr if self.expr is not None else f"EXISTS (\n{self.sql}\n)"


FN = "function_not_allowed"
REL = "relation_not_allowed"
STMT = "statement_not_allowed"
MULTI = "multiple_statements"


def _injected(statement: str) -> str:
    """A where that tries to close its parentheses and run a statement of its own."""
    return f"true) ; {statement} ; SELECT (true"


def _from(kind: str, calls: dict[str, str], code: str = FN) -> list[Attack]:
    """`SELECT * FROM <call>` for each id: a table function or relation named in FROM, refused as `code`."""
    return [Attack(id_, kind, f"SELECT * FROM {call}", code) for id_, call in calls.items()]


def _statement(id_: str, kind: str, sql: str, code: str = STMT) -> Attack:
    """A statement that is not a read; as a where, the same statement behind closed parentheses (which a truth
    rule cannot read as an expression: invalid_truth_rule)."""
    return Attack(id_, kind, sql, code, expr=_injected(sql), truth_code="invalid_truth_rule")


ATTACKS: list[Attack] = [
    # SQL held in a string and run: the way around any parser check that stops at the text
    Attack("json-execute", "executor",
           "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT * FROM read_csv(''/etc/passwd'')'))",
           FN),
    Attack("json-execute-in-cte", "executor",
           "WITH x AS (SELECT * FROM json_execute_serialized_sql(json_serialize_sql("
           "'SELECT * FROM ducklake_expire_snapshots(''lake'', older_than => now())'))) SELECT * FROM x", FN),
    Attack("json-serialize-scalar", "executor", "SELECT json_serialize_sql('SELECT 1') AS q", FN,
           expr="json_serialize_sql('SELECT 1') IS NOT NULL"),
    *_from("executor", {
        "query": "query('SELECT * FROM read_text(''/etc/passwd'')')",
        "query-table": "query_table('workers')",
        "histogram-macro": "histogram(workers, id)",
        "sqlite-query": "sqlite_query('{catalog}', 'SELECT * FROM ducklake_snapshot')",
    }),
    # DuckLake maintenance and options
    *_from("ducklake", {
        "expire-snapshots": "ducklake_expire_snapshots('lake', older_than => now())",
        "set-option": "ducklake_set_option('lake', 'data_inlining_row_limit', 10)",
        "cleanup-old-files": "ducklake_cleanup_old_files('lake', cleanup_all => true)",
        "delete-orphans": "ducklake_delete_orphaned_files('lake', cleanup_all => true)",
        "merge-files": "ducklake_merge_adjacent_files('lake')",
        "rewrite-files": "ducklake_rewrite_data_files('lake')",
        "flush-inlined": "ducklake_flush_inlined_data('lake')",
        "options": "ducklake_options('lake')",
        "table-changes": "ducklake_table_changes('lake', 'main', 'workers', 0, 10)",
    }),
    _statement("call-set-option", "ducklake", "CALL ducklake_set_option('lake', 'data_inlining_row_limit', 10)"),
    # CHECKPOINT in every spelling
    *_from("checkpoint", {"checkpoint-fn": "checkpoint('lake')", "force-checkpoint": "force_checkpoint('lake')"}),
    _statement("checkpoint-stmt", "checkpoint", "CHECKPOINT lake"),
    _statement("call-checkpoint", "checkpoint", "CALL checkpoint('lake')"),
    # other databases' scanners
    *_from("scanner", {
        "sqlite-scan": "sqlite_scan('{catalog}', 'ducklake_snapshot')",
        "sqlite-attach": "sqlite_attach('{catalog}')",
        "postgres-scan": "postgres_scan('dbname=postgres', 'public', 't')",
        "postgres-query": "postgres_query('dbname=postgres', 'SELECT 1')",
        "read-duckdb": "read_duckdb('{catalog}')",
    }),
    # the catalog's metadata, other catalogs, DuckDB's internal views
    Attack("metadata-schema", "metadata", "SELECT * FROM __ducklake_metadata_lake.ducklake_snapshot", REL),
    Attack("metadata-quoted", "metadata", 'SELECT path FROM "__ducklake_metadata_lake".main.ducklake_data_file', REL),
    Attack("metadata-in-cte", "metadata",
           "WITH s AS (SELECT * FROM __ducklake_metadata_lake.ducklake_snapshot) SELECT count(*) FROM s", REL),
    Attack("metadata-describe", "metadata", "DESCRIBE __ducklake_metadata_lake.ducklake_data_file", REL,
           expr="EXISTS (SELECT * FROM __ducklake_metadata_lake.ducklake_data_file)"),
    Attack("metadata-summarize", "metadata", "SUMMARIZE __ducklake_metadata_lake.ducklake_snapshot", REL,
           expr="(SELECT count(*) FROM __ducklake_metadata_lake.ducklake_snapshot) > 0"),
    Attack("metadata-show", "metadata", "SHOW TABLES FROM __ducklake_metadata_lake", REL,
           expr="EXISTS (SELECT * FROM __ducklake_metadata_lake.ducklake_metadata)"),
    *_from("metadata", {
        "information-schema": "information_schema.tables",
        "pg-catalog": "pg_catalog.pg_class",
        "pg-class": "pg_class",
        "sqlite-master": "sqlite_master",
        "main-sqlite-master": "main.sqlite_master",
        "duckdb-tables-view": "duckdb_tables",
        "memory-catalog": "memory.main.anything",
        "temp-catalog": "temp.main.anything",
    }, code=REL),
    Attack("cte-shadow-own-body", "metadata",
           "WITH sqlite_master AS (SELECT * FROM sqlite_master) SELECT * FROM sqlite_master", REL),
    *_from("metadata", {"duckdb-tables-fn": "duckdb_tables()", "system-catalog": "system.main.duckdb_views()"}),
    Attack("show-all-tables", "metadata", "SHOW ALL TABLES", STMT,
           expr="EXISTS (SELECT * FROM information_schema.tables)"),
    Attack("show-databases", "metadata", "SHOW DATABASES", STMT, expr="EXISTS (SELECT * FROM duckdb_databases())"),
    Attack("pg-get-viewdef", "metadata", "SELECT pg_get_viewdef(1) AS v", FN, expr="pg_get_viewdef(1) IS NULL"),
    # functions and views that name folders, settings or the environment
    Attack("glob-root", "paths", "SELECT * FROM glob('{root}/**')", FN),
    Attack("duckdb-databases", "paths", "SELECT path FROM duckdb_databases()", FN),
    Attack("pragma-database-list", "paths", "SELECT * FROM pragma_database_list", REL),
    Attack("current-setting", "paths", "SELECT current_setting('allowed_directories') AS d", FN,
           expr="current_setting('allowed_directories') IS NOT NULL"),
    Attack("current-setting-temp", "paths", "SELECT current_setting('temp_directory') AS d", FN,
           expr="current_setting('temp_directory') <> ''"),
    Attack("duckdb-settings", "paths", "SELECT * FROM duckdb_settings()", FN),
    Attack("duckdb-functions", "paths", "SELECT macro_definition FROM duckdb_functions()", FN),
    Attack("duckdb-extensions", "paths", "SELECT install_path FROM duckdb_extensions()", FN),
    Attack("ducklake-settings", "paths", "SELECT data_path FROM ducklake_settings('lake')", FN),
    Attack("ducklake-list-files", "paths", "SELECT * FROM ducklake_list_files('lake', 'workers')", FN),
    Attack("getenv", "paths", "SELECT getenv('HOME') AS h", FN, expr="getenv('HOME') IS NOT NULL"),
    Attack("secrets", "paths", "SELECT * FROM duckdb_secrets()", FN),
    _statement("pragma", "paths", "PRAGMA database_list"),
    # statements that are not reads
    _statement("copy-into-data", "statement", "COPY (SELECT 1) TO '{data}x.csv'"),
    _statement("attach", "statement", "ATTACH ':memory:' AS other"),
    _statement("set", "statement", "SET enable_external_access = true"),
    Attack("two-statements", "statement", "SELECT 1; DROP TABLE workers", MULTI,
           expr=_injected("DROP TABLE workers"), truth_code="invalid_truth_rule"),
    _statement("explain-options", "statement", "EXPLAIN (FORMAT json) SELECT 1"),
]

# File readers, each in a different position and on a different target (every position and every reader
# appears at least once): FROM, a scalar subquery, IN, a CTE, a lateral join, a macro argument, UNION,
# EXISTS, DESCRIBE, EXPLAIN, a PIVOT's source, a qualified name, a quoted name, a comment before the
# parenthesis, and the select list.
READERS = ["read_text", "read_blob", "read_csv", "read_csv_auto", "read_json", "read_json_auto", "read_ndjson",
           "read_json_objects", "read_parquet", "parquet_scan", "parquet_metadata", "parquet_schema", "sniff_csv",
           "parquet_kv_metadata", "parquet_file_metadata", "read_ndjson_objects"]
TARGETS = ["/etc/passwd", "{catalog}", "{staged}", "{sidecar}", "{toml}", "{observer}", "{data}**/*.parquet"]
POSITIONS = [
    ("from", "SELECT * FROM {f}('{t}')"),
    ("scalar-subquery", "SELECT (SELECT count(*) FROM {f}('{t}')) AS n"),
    ("in-subquery", "SELECT * FROM workers WHERE id IN (SELECT 1 FROM {f}('{t}'))"),
    ("cte", "WITH x AS (SELECT * FROM {f}('{t}')) SELECT * FROM x"),
    ("lateral", "SELECT * FROM workers, LATERAL (SELECT * FROM {f}('{t}')) l"),
    ("macro-argument", "SELECT * FROM vector_search('wc', 'x', 3, ids := (SELECT list(1) FROM {f}('{t}')))"),
    ("union", "SELECT name FROM workers UNION ALL SELECT 'x' FROM {f}('{t}')"),
    ("exists", "SELECT * FROM workers WHERE EXISTS (SELECT 1 FROM {f}('{t}'))"),
    ("describe", "DESCRIBE SELECT * FROM {f}('{t}')"),
    ("explain", "EXPLAIN SELECT * FROM {f}('{t}')"),
    ("explain-analyze", "/* hi */ EXPLAIN ANALYZE SELECT * FROM {f}('{t}')"),
    ("pivot-source", "PIVOT (SELECT * FROM {f}('{t}')) ON x USING count(*)"),
    ("qualified", "SELECT * FROM system.main.{f}('{t}')"),
    ("quoted", "SELECT * FROM \"{F}\"('{t}')"),
    ("comment", "SELECT * FROM {f}/* x */('{t}')"),
    ("window", "SELECT row_number() OVER (ORDER BY (SELECT count(*) FROM {f}('{t}'))) FROM workers"),
]
_WHERE_FORM = "id IN (SELECT 1 FROM {f}('{t}'))"
for (position, template), reader, target in zip(POSITIONS, itertools.cycle(READERS), itertools.cycle(TARGETS)):
    ATTACKS.append(Attack(f"file-{position}-{reader}", "files", template.format(f=reader, F=reader.upper(), t=target),
                          FN, expr=_WHERE_FORM.format(f=reader, t=target)))
for reader, target in zip(READERS[len(POSITIONS):], itertools.cycle(TARGETS)):
    ATTACKS.append(Attack(f"file-from-{reader}", "files", f"SELECT * FROM {reader}('{target}')", FN))
for target in TARGETS:  # the file itself as a table name (a replacement scan) and as a scalar argument
    slug = target.strip("{}/*.").replace("/", "-").replace("*", "")
    ATTACKS.append(Attack(f"file-as-table-{slug}", "files", f"SELECT * FROM '{target}'", REL,
                          expr=f"EXISTS (SELECT * FROM '{target}')"))
    ATTACKS.append(Attack(f"file-scalar-{slug}", "files", f"SELECT read_text('{target}') AS t", FN,
                          expr=f"read_text('{target}') IS NOT NULL"))


@dataclasses.dataclass(frozen=True)
class Read:
    """A legitimate query and what it must return: `rows` exactly, or at least `min_rows`."""

    id: str
    sql: str
    params: list | dict | None = None
    rows: list | None = None
    min_rows: int = 1


POSITIVE: list[Read] = [
    Read("count", "SELECT count(*) FROM workers", rows=[[3]]),
    Read("group-by", "SELECT state, count(*) AS n FROM workers GROUP BY state ORDER BY state", rows=[["IL", 2], ["WI", 1]]),
    Read("qualified", "SELECT count(*) FROM lake.main.workers", rows=[[3]]),
    Read("param-cast", "SELECT name FROM workers WHERE id = ?::INTEGER", params=[2], rows=[["Bob"]]),
    Read("named-param", "SELECT $x + 1 AS y", params={"x": 41}, rows=[[42]]),
    Read("window", "SELECT name, row_number() OVER (PARTITION BY state ORDER BY id) AS r FROM workers ORDER BY id",
         rows=[["Ann", 1], ["Bob", 1], ["Cy", 2]]),
    Read("cte", "WITH il AS (SELECT * FROM workers WHERE state = 'IL') SELECT count(*) FROM il", rows=[[2]]),
    Read("recursive-cte", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
         "SELECT sum(n) FROM r", rows=[[6]]),
    Read("cte-named-like-internal", "WITH sqlite_master AS (SELECT 7 AS a) SELECT a FROM sqlite_master", rows=[[7]]),
    Read("pivot", "PIVOT (SELECT state FROM workers) ON state USING count(*)", rows=[[2, 1]]),
    Read("pivot-in-subquery", "SELECT name FROM (PIVOT workers ON state USING count(*)) WHERE \"WI\" = 1",
         rows=[["Bob"]]),
    Read("pivot-two-columns", "PIVOT (SELECT state, role FROM workers) ON state, role USING count(*)", min_rows=1),
    Read("pivot-static", "PIVOT (SELECT state FROM workers) ON state IN ('IL') USING count(*)", rows=[[2]]),
    Read("pivot-comment", "PIVOT (SELECT state FROM workers) ON state USING count(*) -- by state", rows=[[2, 1]]),
    Read("unpivot", "UNPIVOT (SELECT 1 AS a, 2 AS b) ON a, b INTO NAME k VALUE v ORDER BY k", rows=[["a", 1], ["b", 2]]),
    Read("deep-parens", "SELECT " + "(" * 60 + "1" + ")" * 60 + " AS x", rows=[[1]]),
    Read("explain", "EXPLAIN SELECT * FROM workers"),
    Read("explain-analyze", "-- why\nEXPLAIN ANALYZE SELECT count(*) FROM workers"),
    Read("describe", "DESCRIBE workers", min_rows=3),
    Read("summarize", "SUMMARIZE workers", min_rows=3),
    Read("show-tables", "SHOW TABLES"),
    Read("from-first", "FROM workers SELECT name ORDER BY id LIMIT 1", rows=[["Ann"]]),
    Read("values", "VALUES (1, 'a')", rows=[[1, "a"]]),
    Read("lambda", "SELECT list_transform([1, 2], x -> x * 2) AS l", rows=[[[2, 4]]]),
    Read("strings-of-sql", "SELECT 'read_csv(''/etc/passwd'')' AS s", rows=[["read_csv('/etc/passwd')"]]),
    Read("engine-tables", "SELECT count(*) FROM lake.lh.datasets", rows=[[1]]),
    Read("snapshots", "SELECT count(*) > 0 FROM ducklake_snapshots('lake')", rows=[[True]]),
    Read("time-travel", "SELECT count(*) FROM lake.main.workers AT (TIMESTAMP => now())", rows=[[3]]),
    Read("range", "SELECT sum(i) FROM range(4) t(i)", rows=[[6]]),
    Read("unnest", "SELECT unnest([1, 2]) AS u", rows=[[1], [2]]),
    Read("vector-search", "SELECT count(*) FROM vector_search('wc', 'forklift', 2)", rows=[[2]]),
    Read("hybrid-search", "SELECT count(*) FROM hybrid_search('wc', 'forklift', 2)", rows=[[2]]),
    Read("vector-search-ids", "SELECT count(*) FROM vector_search('wc', 'forklift', 5, "
         "ids := (SELECT list(id) FROM workers WHERE state = 'IL'))", rows=[[2]]),
    Read("datasets-macro", "SELECT name FROM lakehouse_datasets()", rows=[["workers"]]),
    Read("observer-view", "SELECT count(*) >= 0 FROM observer_ops()", rows=[[True]]),
    Read("storage-errors-view", "SELECT count(*) >= 0 FROM storage_errors()", rows=[[True]]),
    Read("now-and-random", "SELECT now() IS NOT NULL, random() < 1, uuid() IS NOT NULL", rows=[[True, True, True]]),
]

# `where` expressions that must keep filtering (hybrid search, matrix search, ask, truth rules)
POSITIVE_WHERE = ["state = 'IL'", "lower(name) LIKE 'a%' OR id IN (2, 3)", "state = 'IL' -- a comment",
                  "list_contains(['IL'], state) AND id > 0"]
