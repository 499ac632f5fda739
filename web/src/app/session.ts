import { createApi, type Api } from "../api/client";

// One client for the page's lifetime: it holds the in-memory access token.
export const api: Api = createApi();
