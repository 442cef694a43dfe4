// fetch wrapper: same origin, the chosen sandbox header, an API key when the server has keys.

export const state = {
  sandbox: sessionStorage.getItem("tessera.sandbox") || "prod",
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.message)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.detail = this.body.detail || this.body.message || this.message;
    this.title = this.body.title;
    this.report = this.body.report || {};
  }
}

function headers(extra) {
  const out = { "x-sandbox-name": state.sandbox, ...extra };
  const key = sessionStorage.getItem("tessera.apiKey");
  if (key) out["x-api-key"] = key;
  return out;
}

export async function api(path, { method = "GET", body, query, signal } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    const s = q.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  const init = { method, signal, headers: headers(body !== undefined ? { "content-type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(url, init);
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (res.status === 401) {
    const key = window.prompt("This server needs an API key (x-api-key). Paste it to continue:");
    if (key) {
      sessionStorage.setItem("tessera.apiKey", key.trim());
      return api(path, { method, body, query, signal });
    }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const ui = (path, opts) => api(`/tessera/ui-api${path}`, opts);

/** POST JSON with upload progress (XMLHttpRequest, since fetch has no upload progress). */
export function postWithProgress(path, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [k, v] of Object.entries(headers({ "content-type": "application/json" }))) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = { detail: xhr.responseText };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    };
    xhr.onerror = () => reject(new ApiError(0, { detail: "Network error while uploading" }));
    xhr.send(JSON.stringify(body));
  });
}
