// Every page of a list: the API's lists page by `next_cursor`, and a screen shows all of it
// (a workspace with more than one page of models or credentials is not cut short).

/** The page query a list call is given. */
export interface PageQuery {
  limit: number;
  cursor?: string;
}

interface Answer<T> {
  data?: { data: T[]; next_cursor?: string | null };
  error?: unknown;
}

/** Pages of this size; at most this many pages (a bound, not an expected size). */
const LIMIT = 200;
const MAX_PAGES = 100;

/** Calls `page` with each cursor in turn and joins the items, in the shape of one answer;
 * the first refused page's error otherwise. */
export async function listAll<T>(page: (query: PageQuery) => Promise<Answer<T>>): Promise<Answer<T>> {
  const items: T[] = [];
  let query: PageQuery = { limit: LIMIT };
  for (let i = 0; i < MAX_PAGES; i++) {
    const answer = await page(query);
    if (!answer.data) return { error: answer.error };
    items.push(...answer.data.data);
    const next = answer.data.next_cursor;
    if (!next) break;
    query = { limit: LIMIT, cursor: next };
  }
  return { data: { data: items, next_cursor: null } };
}
