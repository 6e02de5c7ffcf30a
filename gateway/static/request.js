// One multipart POST through XMLHttpRequest: unlike fetch it reports upload progress, which
// is most of the wait for a large photo on a slow line.

export class NetworkError extends Error {}

// Resolves with {status, header(name), blob} for any HTTP answer; rejects with NetworkError
// when no answer came. hooks.onUploadProgress(fraction) while the body goes out,
// hooks.onUploaded() once it is all sent and the server is working.
export function postForm(url, form, headers, hooks) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.responseType = "blob";
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) hooks.onUploadProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener("load", () => hooks.onUploaded());
    xhr.addEventListener("load", () =>
      resolve({
        status: xhr.status,
        header: (name) => xhr.getResponseHeader(name),
        blob: xhr.response,
      })
    );
    for (const type of ["error", "abort", "timeout"]) {
      xhr.addEventListener(type, () => reject(new NetworkError("no answer: " + type)));
    }
    xhr.send(form);
  });
}
