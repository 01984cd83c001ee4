// The two kinds of message a screen shows after a call: a refusal, read out at once (an
// alert), and a success, read out politely (a status); nothing when there is none.

/** A refusal or failure as text. */
export function Refusal({ text }: { text: string | null | undefined }) {
  return text ? (
    <p class="error" role="alert">
      {text}
    </p>
  ) : null;
}

/** What a successful action did, as text. */
export function Done({ text }: { text: string | null | undefined }) {
  return text ? (
    <p class="done" role="status">
      {text}
    </p>
  ) : null;
}
