-- Winnow 0002: halfvec, stored like vector as a float4 array whose values are rounded to float16
-- (the server rounds text/binary input; functions producing halfvec round in SQL below).

-- float8 -> nearest float16 value (round half to even: round(float8) is rint), as float8; a value
-- beyond 65504 means out of range. ln() only estimates the exponent; the comparisons make it exact.
-- (PL/pgSQL: measured ~50x faster here than the same logic as an inlined SQL expression.)
CREATE FUNCTION winnow.half_round(x float8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ax float8 := abs(x);
  e integer;
  q float8;
BEGIN
  IF ax = 0 THEN RETURN x; END IF;
  IF ax < 6.103515625e-05 THEN
    q := 5.9604644775390625e-08;  -- 2^-24, the subnormal step
  ELSE
    e := floor(ln(ax) / 0.6931471805599453);
    IF 2::float8 ^ e > ax THEN e := e - 1; ELSIF 2::float8 ^ (e + 1) <= ax THEN e := e + 1; END IF;
    q := 2::float8 ^ (e - 10);
  END IF;
  RETURN round(x / q) * q;
END $$;

-- Rounds each element to float16. Out of range: msg_kind 'value' -> '"x" is out of range for type
-- halfvec' (input/casts), 'overflow' -> 'value out of range: overflow' (arithmetic).
CREATE FUNCTION winnow.to_half(a float8[], msg_kind text) RETURNS real[] LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  r float8[];
  bad float8;
BEGIN
  r := array(SELECT winnow.half_round(x) FROM unnest(a) x);
  SELECT x INTO bad FROM unnest(a, r) t(x, y) WHERE abs(y) > 65504 LIMIT 1;
  IF FOUND THEN
    IF msg_kind = 'overflow' THEN
      RAISE EXCEPTION 'value out of range: overflow' USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    RAISE EXCEPTION '"%" is out of range for type halfvec', bad::real USING ERRCODE = 'numeric_value_out_of_range';
  END IF;
  RETURN r::real[];
END $$;

CREATE TYPE halfvec;
CREATE FUNCTION halfvec_in(cstring, oid, integer) RETURNS halfvec AS 'array_in' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_out(halfvec) RETURNS cstring AS 'array_out' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_recv(internal, oid, integer) RETURNS halfvec AS 'array_recv' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_send(halfvec) RETURNS bytea AS 'array_send' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_typmod_out(integer) RETURNS cstring AS 'bittypmodout' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;

-- Typmod input in SQL so the errors are pgvector's own (cstring[] is an ordinary array type).
CREATE FUNCTION halfvec_typmod_in(cstring[]) RETURNS integer LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n integer;
BEGIN
  IF cardinality($1) <> 1 THEN
    RAISE EXCEPTION 'invalid type modifier' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  n := $1[1]::text::integer;
  IF n < 1 THEN
    RAISE EXCEPTION 'dimensions for type halfvec must be at least 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF n > 16000 THEN
    RAISE EXCEPTION 'dimensions for type halfvec cannot exceed 16000' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN n;
END $$;

CREATE TYPE halfvec (
  INPUT = halfvec_in, OUTPUT = halfvec_out, RECEIVE = halfvec_recv, SEND = halfvec_send,
  TYPMOD_IN = halfvec_typmod_in, TYPMOD_OUT = halfvec_typmod_out,
  -- ELEMENT needs a SUBSCRIPT handler: v[1] therefore works here (pgvector rejects it; listed difference).
  ELEMENT = float4, SUBSCRIPT = raw_array_subscript_handler, INTERNALLENGTH = VARIABLE, ALIGNMENT = int4, STORAGE = external
);

CREATE FUNCTION winnow.as_halfvec(real[], real[] DEFAULT NULL) RETURNS halfvec AS 'array_cat' LANGUAGE internal IMMUTABLE PARALLEL SAFE;

-- halfvec -> real[]: same bytes (assignment, as in pgvector).
CREATE CAST (halfvec AS real[]) WITH INOUT AS ASSIGNMENT;
UPDATE pg_catalog.pg_cast SET castmethod = 'b'
 WHERE castsource = 'halfvec'::regtype AND casttarget = 'real[]'::regtype;

CREATE FUNCTION array_to_halfvec(real[], integer, boolean) RETURNS halfvec LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  PERFORM winnow.check_array($1::float8[], $2, 'halfvec');
  RETURN winnow.as_halfvec(winnow.to_half($1::float8[], 'value'));
END $$;
CREATE FUNCTION array_to_halfvec(double precision[], integer, boolean) RETURNS halfvec LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  PERFORM winnow.check_array($1, $2, 'halfvec');
  RETURN winnow.as_halfvec(winnow.to_half(winnow.to_float4($1)::float8[], 'value'));
END $$;
CREATE FUNCTION array_to_halfvec(integer[], integer, boolean) RETURNS halfvec LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  PERFORM winnow.check_array($1::float8[], $2, 'halfvec');
  RETURN winnow.as_halfvec(winnow.to_half($1::real[]::float8[], 'value'));
END $$;
CREATE FUNCTION array_to_halfvec(numeric[], integer, boolean) RETURNS halfvec LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  r real[];
BEGIN
  IF array_ndims($1) > 1 THEN
    RAISE EXCEPTION 'array must be 1-D' USING ERRCODE = 'data_exception';
  END IF;
  IF array_position($1, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'array must not contain nulls' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  r := $1::real[];
  PERFORM winnow.check_array(r::float8[], $2, 'halfvec');
  RETURN winnow.as_halfvec(winnow.to_half(r::float8[], 'value'));
END $$;
CREATE CAST (real[] AS halfvec) WITH FUNCTION array_to_halfvec(real[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (double precision[] AS halfvec) WITH FUNCTION array_to_halfvec(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (integer[] AS halfvec) WITH FUNCTION array_to_halfvec(integer[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (numeric[] AS halfvec) WITH FUNCTION array_to_halfvec(numeric[], integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION halfvec(halfvec, integer, boolean) RETURNS halfvec LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN $2 >= 0 AND cardinality($1::real[]) <> $2
    THEN winnow.raise('22000', 'expected ' || $2 || ' dimensions, not ' || cardinality($1::real[]), $1)
    ELSE $1 END
$$;
CREATE CAST (halfvec AS halfvec) WITH FUNCTION halfvec(halfvec, integer, boolean) AS IMPLICIT;

CREATE FUNCTION halfvec_to_vector(halfvec, integer, boolean) RETURNS vector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN $2 >= 0 AND cardinality($1::real[]) <> $2
    THEN winnow.raise('22000', 'expected ' || $2 || ' dimensions, not ' || cardinality($1::real[]), NULL::@extschema@.vector)
    ELSE winnow.as_vector($1::real[]) END
$$;
CREATE CAST (halfvec AS vector) WITH FUNCTION halfvec_to_vector(halfvec, integer, boolean) AS ASSIGNMENT;

CREATE FUNCTION vector_to_halfvec(vector, integer, boolean) RETURNS halfvec LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN $2 >= 0 AND cardinality($1::real[]) <> $2
    THEN winnow.raise('22000', 'expected ' || $2 || ' dimensions, not ' || cardinality($1::real[]), NULL::@extschema@.halfvec)
    ELSE winnow.as_halfvec(winnow.to_half($1::real[]::float8[], 'value')) END
$$;
CREATE CAST (vector AS halfvec) WITH FUNCTION vector_to_halfvec(vector, integer, boolean) AS IMPLICIT;

CREATE FUNCTION vector_dims(halfvec) RETURNS integer LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT cardinality($1::real[])
$$;


-- Distances accumulate in float4, element by element, exactly like pgvector's C loops (results are
-- bit-identical to pgvector 0.8.0 in PGlite). Postgres's float4 operators raise on overflow/underflow
-- where C yields Infinity/0, so that rare case is recomputed in float8 (Infinity past FLT_MAX).
-- PL/pgSQL caches the inner query's plan across calls; with two unnest() in one target list
-- (ProjectSet, lockstep) this is the fastest pure-SQL form measured (see sql/README.md).
CREATE FUNCTION halfvec_l2_squared_distance(a halfvec, b halfvec) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different halfvec dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  RETURN (SELECT sum((x - y) * (x - y)) FROM (SELECT unnest(a::real[]) AS x, unnest(b::real[]) AS y) t)::float8;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN winnow.float4_overflow((SELECT sum(d * d) FROM (SELECT unnest(a::real[])::float8 - unnest(b::real[]) AS d) t));
END $$;

CREATE FUNCTION l2_distance(a halfvec, b halfvec) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different halfvec dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  RETURN sqrt((SELECT sum((x - y) * (x - y)) FROM (SELECT unnest(a::real[]) AS x, unnest(b::real[]) AS y) t)::float8);
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN sqrt(winnow.float4_overflow((SELECT sum(d * d) FROM (SELECT unnest(a::real[])::float8 - unnest(b::real[]) AS d) t)));
END $$;

CREATE FUNCTION inner_product(a halfvec, b halfvec) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different halfvec dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  RETURN (SELECT sum(x * y) FROM (SELECT unnest(a::real[]) AS x, unnest(b::real[]) AS y) t)::float8;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN winnow.float4_overflow((SELECT sum(x * y) FROM (SELECT unnest(a::real[])::float8 AS x, unnest(b::real[]) AS y) t));
END $$;

CREATE FUNCTION halfvec_negative_inner_product(a halfvec, b halfvec) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT -@extschema@.inner_product(a, b)
$$;

CREATE FUNCTION cosine_distance(a halfvec, b halfvec) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ab float8;
  na float8;
  nb float8;
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different halfvec dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
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

CREATE FUNCTION halfvec_spherical_distance(a halfvec, b halfvec) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT acos(greatest(-1, least(1, @extschema@.inner_product(a, b)))) / pi()
$$;

CREATE FUNCTION l1_distance(a halfvec, b halfvec) RETURNS float8 LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different halfvec dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  RETURN (SELECT sum(abs(x - y)) FROM (SELECT unnest(a::real[]) AS x, unnest(b::real[]) AS y) t)::float8;
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN winnow.float4_overflow((SELECT sum(abs(d)) FROM (SELECT unnest(a::real[])::float8 - unnest(b::real[]) AS d) t));
END $$;

CREATE FUNCTION l2_norm(halfvec) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT sqrt(sum(x * x)) FROM (SELECT unnest($1::real[])::float8 AS x) t
$$;

CREATE FUNCTION l2_normalize(halfvec) RETURNS halfvec LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT winnow.as_halfvec(CASE WHEN n > 0
      THEN winnow.to_half(array(SELECT (x / n)::real::float8 FROM unnest($1::real[]) x), 'overflow')
      ELSE $1::real[] END)
    FROM (SELECT @extschema@.l2_norm($1) AS n) t
$$;

CREATE FUNCTION binary_quantize(halfvec) RETURNS bit LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT string_agg(CASE WHEN x > 0 THEN '1' ELSE '0' END, '')::varbit FROM unnest($1::real[]) x
$$;

CREATE FUNCTION subvector(halfvec, integer, integer) RETURNS halfvec LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  a real[] := $1;
  dim integer := cardinality(a);
  s integer := $2;
  e integer;
BEGIN
  IF $3 < 1 THEN
    RAISE EXCEPTION 'halfvec must have at least 1 dimension' USING ERRCODE = 'data_exception';
  END IF;
  IF s > dim - $3 THEN e := dim + 1; ELSE e := s + $3; END IF;
  IF s < 1 THEN s := 1;
  ELSIF s > dim THEN
    RAISE EXCEPTION 'halfvec must have at least 1 dimension' USING ERRCODE = 'data_exception';
  END IF;
  IF e - s < 1 THEN
    RAISE EXCEPTION 'halfvec must have at least 1 dimension' USING ERRCODE = 'data_exception';
  END IF;
  RETURN winnow.as_halfvec(a[s:e - 1]);
END $$;

-- Arithmetic: float4 result rounded to float16; a float16 overflow is 'value out of range: overflow'.
CREATE FUNCTION halfvec_add(a halfvec, b halfvec) RETURNS halfvec LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(a::real[]) <> cardinality(b::real[])
    THEN winnow.raise('22000', 'different halfvec dimensions ' || cardinality(a::real[]) || ' and ' || cardinality(b::real[]), a)
    ELSE winnow.as_halfvec(winnow.to_half(array(SELECT (unnest(a::real[]) + unnest(b::real[]))::float8), 'overflow')) END
$$;
CREATE FUNCTION halfvec_sub(a halfvec, b halfvec) RETURNS halfvec LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(a::real[]) <> cardinality(b::real[])
    THEN winnow.raise('22000', 'different halfvec dimensions ' || cardinality(a::real[]) || ' and ' || cardinality(b::real[]), a)
    ELSE winnow.as_halfvec(winnow.to_half(array(SELECT (unnest(a::real[]) - unnest(b::real[]))::float8), 'overflow')) END
$$;
CREATE FUNCTION halfvec_mul(a halfvec, b halfvec) RETURNS halfvec LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  r real[];
BEGIN
  IF cardinality(a::real[]) <> cardinality(b::real[]) THEN
    RAISE EXCEPTION 'different halfvec dimensions % and %', cardinality(a::real[]), cardinality(b::real[]) USING ERRCODE = 'data_exception';
  END IF;
  r := winnow.to_half(array(SELECT (unnest(a::real[]) * unnest(b::real[]))::float8), 'overflow');
  IF EXISTS (SELECT FROM unnest(r, a::real[], b::real[]) t(z, x, y) WHERE z = 0 AND x <> 0 AND y <> 0) THEN
    RAISE EXCEPTION 'value out of range: underflow' USING ERRCODE = 'numeric_value_out_of_range';
  END IF;
  RETURN winnow.as_halfvec(r);
END $$;
CREATE FUNCTION halfvec_concat(a halfvec, b halfvec) RETURNS halfvec LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(a::real[]) + cardinality(b::real[]) > 16000
    THEN winnow.raise('54000', 'halfvec cannot have more than 16000 dimensions', a)
    ELSE winnow.as_halfvec(a::real[] || b::real[]) END
$$;


-- Comparisons: Postgres's array comparison on float4 elements orders exactly like pgvector's
-- halfvec_cmp (element-wise, then shorter first), so the C array functions are used directly.
CREATE FUNCTION halfvec_lt(halfvec, halfvec) RETURNS boolean AS 'array_lt' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_le(halfvec, halfvec) RETURNS boolean AS 'array_le' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_eq(halfvec, halfvec) RETURNS boolean AS 'array_eq' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_ne(halfvec, halfvec) RETURNS boolean AS 'array_ne' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_ge(halfvec, halfvec) RETURNS boolean AS 'array_ge' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_gt(halfvec, halfvec) RETURNS boolean AS 'array_gt' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION halfvec_cmp(halfvec, halfvec) RETURNS integer AS 'btarraycmp' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR <-> (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = l2_distance, COMMUTATOR = '<->');
CREATE OPERATOR <#> (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_negative_inner_product, COMMUTATOR = '<#>');
CREATE OPERATOR <=> (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = cosine_distance, COMMUTATOR = '<=>');
CREATE OPERATOR <+> (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = l1_distance, COMMUTATOR = '<+>');
CREATE OPERATOR + (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_add, COMMUTATOR = +);
CREATE OPERATOR - (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_sub);
CREATE OPERATOR * (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_mul, COMMUTATOR = *);
CREATE OPERATOR || (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_concat);
CREATE OPERATOR < (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_lt, COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR <= (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_le, COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR = (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_eq, COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_ne, COMMUTATOR = <>, NEGATOR = =, RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR >= (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_ge, COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR > (LEFTARG = halfvec, RIGHTARG = halfvec, FUNCTION = halfvec_gt, COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS halfvec_ops DEFAULT FOR TYPE halfvec USING btree AS
  OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
  FUNCTION 1 halfvec_cmp(halfvec, halfvec);


CREATE FUNCTION halfvec_accum(s double precision[], v halfvec) RETURNS double precision[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT @extschema@.vector_accum(s, winnow.as_vector(v::real[]))
$$;
CREATE FUNCTION halfvec_combine(a double precision[], b double precision[]) RETURNS double precision[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT @extschema@.vector_combine(a, b)
$$;
CREATE FUNCTION halfvec_avg(s double precision[]) RETURNS halfvec LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN s[1] = 0 THEN NULL
    ELSE winnow.as_halfvec(winnow.to_half(array(SELECT (x / s[1])::real::float8 FROM unnest(s[2:]) x), 'overflow')) END
$$;
CREATE AGGREGATE avg(halfvec) (SFUNC = halfvec_accum, STYPE = double precision[], FINALFUNC = halfvec_avg, COMBINEFUNC = halfvec_combine, INITCOND = '{0}', PARALLEL = SAFE);
CREATE AGGREGATE sum(halfvec) (SFUNC = halfvec_add, STYPE = halfvec, COMBINEFUNC = halfvec_add, PARALLEL = SAFE);
