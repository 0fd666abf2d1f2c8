// Timestamp text for subtitle and lyric formats.
const pad = (n: number, w = 2) => String(n).padStart(w, "0");

function split(t: number) {
  const ms = Math.max(0, Math.round(t * 1000));
  return { h: Math.floor(ms / 3_600_000), m: Math.floor(ms / 60_000) % 60, s: Math.floor(ms / 1000) % 60, ms: ms % 1000 };
}

/** 00:01:02,345 */
export function srtTime(t: number) {
  const x = split(t);
  return `${pad(x.h)}:${pad(x.m)}:${pad(x.s)},${pad(x.ms, 3)}`;
}

/** 00:01:02.345 */
export function vttTime(t: number) {
  return srtTime(t).replace(",", ".");
}

/** [01:02.34] minutes may exceed 59, as LRC players expect. */
export function lrcTime(t: number) {
  const cs = Math.max(0, Math.round(t * 100));
  return `${pad(Math.floor(cs / 6000))}:${pad(Math.floor(cs / 100) % 60)}.${pad(cs % 100)}`;
}

/** 0:01:02.34 (ASS) */
export function assTime(t: number) {
  const cs = Math.max(0, Math.round(t * 100));
  return `${Math.floor(cs / 360000)}:${pad(Math.floor(cs / 6000) % 60)}:${pad(Math.floor(cs / 100) % 60)}.${pad(cs % 100)}`;
}
