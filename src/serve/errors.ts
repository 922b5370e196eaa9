/**
 * Errors in OpenAI's shape: `{"error":{"message","type","param","code"}}` with the HTTP status
 * OpenAI uses for the same mistake, so that OpenAI clients report them as they would upstream.
 */
import type { z } from 'zod';

export type ErrorStatus = 400 | 401 | 404 | 405 | 413 | 500 | 503;

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: string = status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** The first zod issue as a 400 naming the field (`messages.0.role`). */
export function fromZod(error: z.ZodError): ApiError {
  const issue = error.issues[0]!;
  const param = issue.path.length ? issue.path.map(String).join('.') : null;
  return new ApiError(400, param ? `${param}: ${issue.message}` : issue.message, param);
}

export const unknownModel = (id: string): ApiError =>
  new ApiError(404, `The model \`${id}\` does not exist; GET /v1/models lists the served models`, 'model', 'model_not_found');
