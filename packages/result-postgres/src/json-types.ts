import { parseCeleryJson } from '@conveyor/core/plugin';
import { types as pgTypes, type CustomTypesConfig } from 'pg';

/** OIDs of PostgreSQL's json and jsonb types. */
const JSON_OIDS = new Set([114, 3802]);

/**
 * Type parsers that read json and jsonb as Celery's JSON (`parseCeleryJson`): an integer beyond
 * 2^53 comes back exact, as a BigInt, where pg's own JSON.parse would round it.
 */
export const CELERY_JSON_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    JSON_OIDS.has(oid) && format !== 'binary'
      ? parseCeleryJson
      : pgTypes.getTypeParser(oid, format ?? 'text')) as CustomTypesConfig['getTypeParser'],
};
