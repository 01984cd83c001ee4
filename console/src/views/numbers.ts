// Numbers typed into the console's fields, read one way everywhere: plain digits (an optional
// decimal part where money is concerned), no "1e3", "0x10" or "Infinity" (JSON would turn the
// last into null and silently clear a setting).

/** A typed whole number: null when empty, NaN when it is not plain digits. */
export function wholeNumber(raw: string): number | null {
  const v = raw.trim();
  if (v === "") return null;
  return /^\d+$/.test(v) ? Number(v) : NaN;
}

/** A typed decimal such as 2.5: null when empty, NaN when it is not one. */
export function decimalNumber(raw: string): number | null {
  const v = raw.trim();
  if (v === "") return null;
  return /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
}
