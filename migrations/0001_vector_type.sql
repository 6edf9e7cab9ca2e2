-- Winnow 0001: the vector type, pgvector 0.8's SQL surface for it, on a Postgres without pgvector.
--
-- Storage is exactly a float4 array (the type's I/O functions are Postgres's own array functions,
-- declared LANGUAGE internal, which needs superuser). The Winnow server translates pgvector's text
-- format '[1,2,3]' to the array form '{1,2,3}' on the way in and back on the way out, using the
-- vector type's OID in RowDescription / ParameterDescription.
--
-- Objects users see live in the schema current at install time (like pgvector's @extschema@,
-- normally public); helpers live in schema winnow. Function bodies qualify helper names so a
-- user's search_path does not change their meaning.

CREATE SCHEMA IF NOT EXISTS winnow;

-- Raises an error with a given SQLSTATE; typed so it can sit in any CASE branch.
CREATE FUNCTION winnow.raise(code text, msg text, dummy anyelement) RETURNS anyelement
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = code, MESSAGE = msg;
END $$;

-- A float8 sum as C's float accumulator would end: +-Infinity beyond FLT_MAX (+ half an ulp).
CREATE FUNCTION winnow.float4_overflow(s float8) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN s >= 3.4028235677973366e38 THEN 'Infinity'::float8
              WHEN s <= -3.4028235677973366e38 THEN '-Infinity'::float8 ELSE s END
$$;

CREATE TYPE vector;
CREATE FUNCTION vector_in(cstring, oid, integer) RETURNS vector AS 'array_in' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_out(vector) RETURNS cstring AS 'array_out' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_recv(internal, oid, integer) RETURNS vector AS 'array_recv' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_send(vector) RETURNS bytea AS 'array_send' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_typmod_out(integer) RETURNS cstring AS 'bittypmodout' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;

-- Typmod input in SQL so the errors are pgvector's own (cstring[] is an ordinary array type).
CREATE FUNCTION vector_typmod_in(cstring[]) RETURNS integer LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n integer;
BEGIN
  IF cardinality($1) <> 1 THEN
    RAISE EXCEPTION 'invalid type modifier' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  n := $1[1]::text::integer;
  IF n < 1 THEN
    RAISE EXCEPTION 'dimensions for type vector must be at least 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF n > 16000 THEN
    RAISE EXCEPTION 'dimensions for type vector cannot exceed 16000' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN n;
END $$;

CREATE TYPE vector (
  INPUT = vector_in, OUTPUT = vector_out, RECEIVE = vector_recv, SEND = vector_send,
  TYPMOD_IN = vector_typmod_in, TYPMOD_OUT = vector_typmod_out,
  -- ELEMENT needs a SUBSCRIPT handler: v[1] therefore works here (pgvector rejects it; listed difference).
  ELEMENT = float4, SUBSCRIPT = raw_array_subscript_handler, INTERNALLENGTH = VARIABLE, ALIGNMENT = int4, STORAGE = external
);

-- real[] <-> vector without a copy: array_cat(x, NULL) returns x unchanged (C, no validation).
-- Only for values already known valid (function bodies); user casts go through array_to_vector.
CREATE FUNCTION winnow.as_vector(real[], real[] DEFAULT NULL) RETURNS vector AS 'array_cat' LANGUAGE internal IMMUTABLE PARALLEL SAFE;

-- vector -> real[]: same bytes. CREATE CAST refuses WITHOUT FUNCTION between an array and a
-- non-array type, so the cast is created WITH INOUT and relabelled binary in the catalog.
CREATE CAST (vector AS real[]) WITH INOUT AS IMPLICIT;
UPDATE pg_catalog.pg_cast SET castmethod = 'b'
 WHERE castsource = 'vector'::regtype AND casttarget = 'real[]'::regtype;

-- Validation shared by every path that builds a vector from an array.
CREATE FUNCTION winnow.check_array(a float8[], typmod integer, tname text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  n integer;
BEGIN
  IF array_ndims(a) > 1 THEN
    RAISE EXCEPTION 'array must be 1-D' USING ERRCODE = 'data_exception';
  END IF;
  IF array_position(a, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'array must not contain nulls' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  n := coalesce(cardinality(a), 0);
  IF n < 1 THEN
    RAISE EXCEPTION '% must have at least 1 dimension', tname USING ERRCODE = 'data_exception';
  END IF;
  IF n > 16000 THEN
    RAISE EXCEPTION '% cannot have more than 16000 dimensions', tname USING ERRCODE = 'program_limit_exceeded';
  END IF;
  IF typmod <> -1 AND typmod <> n THEN
    RAISE EXCEPTION 'expected % dimensions, not %', typmod, n USING ERRCODE = 'data_exception';
  END IF;
  IF 'NaN'::float8 = ANY (a) THEN
    RAISE EXCEPTION 'NaN not allowed in %', tname USING ERRCODE = 'data_exception';
  END IF;
  -- (float) d overflows to infinity from FLT_MAX + half an ulp up.
  IF EXISTS (SELECT FROM unnest(a) x WHERE abs(x) >= 3.4028235677973366e38) THEN
    RAISE EXCEPTION 'infinite value not allowed in %', tname USING ERRCODE = 'data_exception';
  END IF;
END $$;

-- float8 -> float4 the way C's (float) does it: no overflow/underflow errors (checked before).
CREATE FUNCTION winnow.to_float4(a float8[]) RETURNS real[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array(SELECT CASE WHEN x <> 0 AND abs(x) < 1e-46 THEN (0 * sign(x))::real ELSE x::real END FROM unnest(a) x)
$$;

CREATE FUNCTION array_to_vector(real[], integer, boolean) RETURNS vector LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  PERFORM winnow.check_array($1::float8[], $2, 'vector');
  RETURN winnow.as_vector(array(SELECT unnest($1)));
END $$;
CREATE FUNCTION array_to_vector(double precision[], integer, boolean) RETURNS vector LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  PERFORM winnow.check_array($1, $2, 'vector');
  RETURN winnow.as_vector(winnow.to_float4($1));
END $$;
CREATE FUNCTION array_to_vector(integer[], integer, boolean) RETURNS vector LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  PERFORM winnow.check_array($1::float8[], $2, 'vector');
  RETURN winnow.as_vector(array(SELECT unnest($1)::real));
END $$;
CREATE FUNCTION array_to_vector(numeric[], integer, boolean) RETURNS vector LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  r real[];
BEGIN
  IF array_ndims($1) > 1 THEN
    RAISE EXCEPTION 'array must be 1-D' USING ERRCODE = 'data_exception';
  END IF;
  IF array_position($1, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'array must not contain nulls' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  r := $1::real[];  -- numeric -> real raises Postgres's own out-of-range error, as pgvector does
  PERFORM winnow.check_array(r::float8[], $2, 'vector');
  RETURN winnow.as_vector(array(SELECT unnest(r)));
END $$;
CREATE CAST (real[] AS vector) WITH FUNCTION array_to_vector(real[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (double precision[] AS vector) WITH FUNCTION array_to_vector(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (integer[] AS vector) WITH FUNCTION array_to_vector(integer[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (numeric[] AS vector) WITH FUNCTION array_to_vector(numeric[], integer, boolean) AS ASSIGNMENT;

-- Length coercion for vector(n): 'expected 3 dimensions, not 2'. Plain SQL so the planner inlines it.
CREATE FUNCTION vector(vector, integer, boolean) RETURNS vector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN $2 >= 0 AND cardinality($1::real[]) <> $2
    THEN winnow.raise('22000', 'expected ' || $2 || ' dimensions, not ' || cardinality($1::real[]), $1)
    ELSE $1 END
$$;
CREATE CAST (vector AS vector) WITH FUNCTION vector(vector, integer, boolean) AS IMPLICIT;

CREATE FUNCTION vector_to_float4(vector, integer, boolean) RETURNS real[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT $1::real[]
$$;

CREATE FUNCTION vector_dims(vector) RETURNS integer LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT cardinality($1::real[])
$$;

-- Distances accumulate in float4, element by element, exactly like pgvector's C loops (results are
-- bit-identical to pgvector 0.8.0 in PGlite). Postgres's float4 operators raise on overflow/underflow
-- where C yields Infinity/0, so that rare case is recomputed in float8 (Infinity past FLT_MAX).
-- PL/pgSQL caches the inner query's plan across calls; with two unnest() in one target list
-- (ProjectSet, lockstep) this is the fastest pure-SQL form measured (see sql/README.md).
CREATE FUNCTION vector_l2_squared_distance(a vector, b vector) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different vector dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  RETURN (SELECT sum((x - y) * (x - y)) FROM (SELECT unnest(a::real[]) AS x, unnest(b::real[]) AS y) t)::float8;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN winnow.float4_overflow((SELECT sum(d * d) FROM (SELECT unnest(a::real[])::float8 - unnest(b::real[]) AS d) t));
END $$;

CREATE FUNCTION l2_distance(a vector, b vector) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different vector dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  RETURN sqrt((SELECT sum((x - y) * (x - y)) FROM (SELECT unnest(a::real[]) AS x, unnest(b::real[]) AS y) t)::float8);
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN sqrt(winnow.float4_overflow((SELECT sum(d * d) FROM (SELECT unnest(a::real[])::float8 - unnest(b::real[]) AS d) t)));
END $$;

CREATE FUNCTION inner_product(a vector, b vector) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different vector dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  RETURN (SELECT sum(x * y) FROM (SELECT unnest(a::real[]) AS x, unnest(b::real[]) AS y) t)::float8;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN winnow.float4_overflow((SELECT sum(x * y) FROM (SELECT unnest(a::real[])::float8 AS x, unnest(b::real[]) AS y) t));
END $$;

CREATE FUNCTION vector_negative_inner_product(a vector, b vector) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT -@extschema@.inner_product(a, b)
$$;

CREATE FUNCTION cosine_distance(a vector, b vector) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ab float8;
  na float8;
  nb float8;
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different vector dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  BEGIN
    SELECT sum(x * y), sum(x * x), sum(y * y) INTO ab, na, nb
      FROM (SELECT unnest(a::real[]) AS x, unnest(b::real[]) AS y) t;
  EXCEPTION WHEN numeric_value_out_of_range THEN
    SELECT winnow.float4_overflow(sum(x * y)), winnow.float4_overflow(sum(x * x)), winnow.float4_overflow(sum(y::float8 * y)) INTO ab, na, nb
      FROM (SELECT unnest(a::real[])::float8 AS x, unnest(b::real[]) AS y) t;
  END;
  IF na * nb = 0 OR na = 'Infinity' OR nb = 'Infinity' OR ab IN ('Infinity', '-Infinity') THEN
    RETURN 'NaN';
  END IF;
  RETURN 1 - greatest(-1, least(1, ab / sqrt(na * nb)));
END $$;

CREATE FUNCTION vector_spherical_distance(a vector, b vector) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT acos(greatest(-1, least(1, @extschema@.inner_product(a, b)))) / pi()
$$;

CREATE FUNCTION l1_distance(a vector, b vector) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different vector dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  RETURN (SELECT sum(abs(x - y)) FROM (SELECT unnest(a::real[]) AS x, unnest(b::real[]) AS y) t)::float8;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN winnow.float4_overflow((SELECT sum(abs(d)) FROM (SELECT unnest(a::real[])::float8 - unnest(b::real[]) AS d) t));
END $$;

CREATE FUNCTION vector_norm(vector) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT sqrt(sum(x * x)) FROM (SELECT unnest($1::real[])::float8 AS x) t
$$;

CREATE FUNCTION l2_normalize(vector) RETURNS vector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT winnow.as_vector(CASE WHEN n > 0
      THEN array(SELECT (x / n)::real FROM unnest($1::real[]) x)
      ELSE $1::real[] END)
    FROM (SELECT @extschema@.vector_norm($1) AS n) t
$$;

CREATE FUNCTION binary_quantize(vector) RETURNS bit LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT string_agg(CASE WHEN x > 0 THEN '1' ELSE '0' END, '')::varbit FROM unnest($1::real[]) x
$$;

CREATE FUNCTION subvector(vector, integer, integer) RETURNS vector LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  a real[] := $1;
  dim integer := cardinality(a);
  s integer := $2;
  e integer;
BEGIN
  IF $3 < 1 THEN
    RAISE EXCEPTION 'vector must have at least 1 dimension' USING ERRCODE = 'data_exception';
  END IF;
  IF s > dim - $3 THEN e := dim + 1; ELSE e := s + $3; END IF;
  IF s < 1 THEN s := 1;
  ELSIF s > dim THEN
    RAISE EXCEPTION 'vector must have at least 1 dimension' USING ERRCODE = 'data_exception';
  END IF;
  IF e - s < 1 THEN
    RAISE EXCEPTION 'vector must have at least 1 dimension' USING ERRCODE = 'data_exception';
  END IF;
  RETURN winnow.as_vector(a[s:e - 1]);
END $$;

-- Element-wise arithmetic in float4: Postgres's float4 operators raise the same
-- 'value out of range: overflow/underflow' errors pgvector raises.
CREATE FUNCTION vector_add(a vector, b vector) RETURNS vector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(a::real[]) <> cardinality(b::real[])
    THEN winnow.raise('22000', 'different vector dimensions ' || cardinality(a::real[]) || ' and ' || cardinality(b::real[]), a)
    ELSE winnow.as_vector(array(SELECT unnest(a::real[]) + unnest(b::real[]))) END
$$;
CREATE FUNCTION vector_sub(a vector, b vector) RETURNS vector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(a::real[]) <> cardinality(b::real[])
    THEN winnow.raise('22000', 'different vector dimensions ' || cardinality(a::real[]) || ' and ' || cardinality(b::real[]), a)
    ELSE winnow.as_vector(array(SELECT unnest(a::real[]) - unnest(b::real[]))) END
$$;
CREATE FUNCTION vector_mul(a vector, b vector) RETURNS vector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(a::real[]) <> cardinality(b::real[])
    THEN winnow.raise('22000', 'different vector dimensions ' || cardinality(a::real[]) || ' and ' || cardinality(b::real[]), a)
    ELSE winnow.as_vector(array(SELECT unnest(a::real[]) * unnest(b::real[]))) END
$$;
CREATE FUNCTION vector_concat(a vector, b vector) RETURNS vector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(a::real[]) + cardinality(b::real[]) > 16000
    THEN winnow.raise('54000', 'vector cannot have more than 16000 dimensions', a)
    ELSE winnow.as_vector(a::real[] || b::real[]) END
$$;

-- Comparisons: Postgres's array comparison on float4 elements orders exactly like pgvector's
-- vector_cmp (element-wise, then shorter first), so the C array functions are used directly.
CREATE FUNCTION vector_lt(vector, vector) RETURNS boolean AS 'array_lt' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_le(vector, vector) RETURNS boolean AS 'array_le' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_eq(vector, vector) RETURNS boolean AS 'array_eq' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_ne(vector, vector) RETURNS boolean AS 'array_ne' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_ge(vector, vector) RETURNS boolean AS 'array_ge' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_gt(vector, vector) RETURNS boolean AS 'array_gt' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION vector_cmp(vector, vector) RETURNS integer AS 'btarraycmp' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR <-> (LEFTARG = vector, RIGHTARG = vector, FUNCTION = l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = vector, RIGHTARG = vector, FUNCTION = cosine_distance, COMMUTATOR = '<=>');
CREATE OPERATOR <+> (LEFTARG = vector, RIGHTARG = vector, FUNCTION = l1_distance, COMMUTATOR = '<+>');
CREATE OPERATOR + (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_add, COMMUTATOR = +);
CREATE OPERATOR - (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_sub);
CREATE OPERATOR * (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_mul, COMMUTATOR = *);
CREATE OPERATOR || (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_concat);
CREATE OPERATOR < (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_lt, COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR <= (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_le, COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR = (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_eq, COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_ne, COMMUTATOR = <>, NEGATOR = =, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR >= (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_ge, COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR > (LEFTARG = vector, RIGHTARG = vector, FUNCTION = vector_gt, COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS vector_ops DEFAULT FOR TYPE vector USING btree AS
  OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
  FUNCTION 1 vector_cmp(vector, vector);

-- Aggregates. avg: float8 state {n, sum_1..sum_d} like pgvector's vector_accum.
CREATE FUNCTION vector_accum(s double precision[], v vector) RETURNS double precision[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE
    WHEN s[1] = 0 THEN array[1::float8] || v::real[]::float8[]
    WHEN cardinality(s) - 1 <> cardinality(v::real[])
      THEN winnow.raise('22000', 'expected ' || (cardinality(s) - 1) || ' dimensions, not ' || cardinality(v::real[]), s)
    ELSE array[s[1] + 1] || array(SELECT x + y FROM unnest(s[2:], v::real[]) t(x, y))
  END
$$;
CREATE FUNCTION vector_combine(a double precision[], b double precision[]) RETURNS double precision[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN a[1] = 0 THEN b WHEN b[1] = 0 THEN a
    WHEN cardinality(a) <> cardinality(b)
      THEN winnow.raise('22000', 'expected ' || (cardinality(a) - 1) || ' dimensions, not ' || (cardinality(b) - 1), a)
    ELSE array(SELECT x + y FROM unnest(a, b) t(x, y)) END
$$;
CREATE FUNCTION vector_avg(s double precision[]) RETURNS vector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN s[1] = 0 THEN NULL
    ELSE winnow.as_vector(array(SELECT (x / s[1])::real FROM unnest(s[2:]) x)) END
$$;
CREATE AGGREGATE avg(vector) (SFUNC = vector_accum, STYPE = double precision[], FINALFUNC = vector_avg, COMBINEFUNC = vector_combine, INITCOND = '{0}', PARALLEL = SAFE);
CREATE AGGREGATE sum(vector) (SFUNC = vector_add, STYPE = vector, COMBINEFUNC = vector_add, PARALLEL = SAFE);
