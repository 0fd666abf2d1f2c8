// Receive a multipart upload as a stream: refuse oversize bodies before buffering them, and
// report bytes received as the job's "uploading" progress.
import { HttpError } from "./errors";
import type { WorkContext } from "../core/work";

export interface Upload {
  form: FormData;
  file: File;
  bytes: Uint8Array;
}

export function checkUploadHeaders(request: Request, maxBytes: number) {
  const type = request.headers.get("content-type") ?? "";
  if (!type.startsWith("multipart/form-data")) {
    throw new HttpError(415, "send the audio as multipart/form-data with a 'file' field", "unsupported_media_type");
  }
  const length = Number(request.headers.get("content-length") ?? NaN);
  if (length > maxBytes) throw tooLarge(maxBytes);
}

const tooLarge = (max: number) => new HttpError(413, `upload exceeds the limit of ${(max / 1048576).toFixed(1)} MiB`, "file_too_large");

export async function receiveUpload(request: Request, maxBytes: number, ctx?: WorkContext): Promise<Upload> {
  checkUploadHeaders(request, maxBytes);
  const length = Number(request.headers.get("content-length") ?? NaN);
  const chunks: Uint8Array[] = [];
  let received = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      if (received > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(maxBytes);
      }
      chunks.push(value);
      if (length > 0) ctx?.progress(received / length, `received ${(received / 1048576).toFixed(1)} of ${(length / 1048576).toFixed(1)} MiB`);
    }
  }
  let form: FormData;
  try {
    // A Blob over the received chunks: the multipart parser reads them without another joined copy.
    form = await new Response(new Blob(chunks as BlobPart[]), { headers: { "content-type": request.headers.get("content-type")! } }).formData();
  } catch {
    throw new HttpError(400, "the multipart body could not be parsed", "bad_multipart");
  }
  const file = form.get("file");
  if (!(file instanceof File)) throw new HttpError(400, "the form has no 'file' field with a file in it", "missing_file");
  return { form, file, bytes: new Uint8Array(await file.arrayBuffer()) };
}
