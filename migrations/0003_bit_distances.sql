-- Winnow 0003: pgvector's distances on Postgres's own bit type.

CREATE FUNCTION hamming_distance(a bit, b bit) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN length(a) <> length(b)
    THEN winnow.raise('22000', 'different bit lengths ' || length(a) || ' and ' || length(b), 0::float8)
    ELSE bit_count(a # b)::float8 END
$$;

-- pgvector: 1 - |a & b| / (|a| + |b| - |a & b|), and 1 when both are all zeros.
CREATE FUNCTION jaccard_distance(a bit, b bit) RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN length(a) <> length(b)
    THEN winnow.raise('22000', 'different bit lengths ' || length(a) || ' and ' || length(b), 0::float8)
    ELSE (SELECT CASE WHEN na + nb - ab = 0 THEN 1::float8 ELSE 1 - ab::float8 / (na + nb - ab) END
            FROM (SELECT bit_count(a & b) AS ab, bit_count(a) AS na, bit_count(b) AS nb) t) END
$$;

CREATE OPERATOR <~> (LEFTARG = bit, RIGHTARG = bit, FUNCTION = hamming_distance, COMMUTATOR = '<~>');
CREATE OPERATOR <%> (LEFTARG = bit, RIGHTARG = bit, FUNCTION = jaccard_distance, COMMUTATOR = '<%>');
