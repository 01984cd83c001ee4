// An in-page confirmation (the CSP-safe, testable stand-in for window.confirm): a named group
// with the question, the action and Keep, opened with Keep focused; Escape or Keep closes it
// and gives the focus back to the button that opened it.
import { useLayoutEffect, useRef, useState } from "preact/hooks";

interface ConfirmProps {
  /** The group's accessible name, a question ("Delete key-1?"). */
  label: string;
  /** What happens, in words. */
  text: string;
  /** The words on the button that does it ("Delete", "Revoke"). */
  action: string;
  onConfirm: () => void | Promise<void>;
  onKeep: () => void;
}

/** Asks before a destructive action; the safe choice has the focus. */
export function Confirm({ label, text, action, onConfirm, onKeep }: ConfirmProps) {
  const keep = useRef<HTMLButtonElement>(null);
  // The button that opened it gets the focus back when the answer is Keep.
  const opener = useRef(document.activeElement as HTMLElement | null);
  // Before the next key press can land elsewhere (an effect would run after paint).
  useLayoutEffect(() => keep.current?.focus(), []);
  // One answer per confirmation: a double click sends one request.
  const [busy, setBusy] = useState(false);
  const confirm = async () => {
    setBusy(true);
    try {
      await onConfirm();
    } finally {
      setBusy(false);
    }
  };
  const kept = () => {
    onKeep();
    opener.current?.focus();
  };
  return (
    <div class="confirm" role="group" aria-label={label} onKeyDown={(e) => e.key === "Escape" && kept()}>
      <span>{text}</span>
      <button type="button" class="danger" disabled={busy} onClick={() => void confirm()}>
        {action}
      </button>
      <button type="button" class="secondary" ref={keep} onClick={kept}>
        Keep
      </button>
    </div>
  );
}
