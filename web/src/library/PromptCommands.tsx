import { useEffect, useState, type AriaAttributes, type FormEvent, type KeyboardEvent, type ReactNode } from "react";
import type { Api } from "../api/client";
import type { Prompt } from "../gen/parley/chat/v1/prompt_pb";
import { useT } from "../i18n";
import { Modal } from "../ui/Modal";
import { describeError } from "../ui/errorText";
import { fillPrompt, matchPrompts, replaceCommand, slashAt } from "./prompts";
import { useLibraryT } from "./strings";

/** What the composer needs for `/` commands: its change and key handlers, the ARIA of its
 * box, the list shown above it and the dialog asking for a prompt's variables. */
export interface PromptCommands {
  onChange: (value: string, caret: number) => void;
  onKeyDownFirst: (e: KeyboardEvent<HTMLTextAreaElement>) => boolean;
  inputAria: AriaAttributes & { role?: string };
  suggestions: ReactNode;
  dialog: ReactNode;
}

/** Puts the caret at `caret` in the composer once React has written the new text. */
function focusComposer(caret: number) {
  window.requestAnimationFrame(() => {
    const box = document.getElementById("composer");
    if (box instanceof HTMLTextAreaElement) {
      box.focus();
      box.setSelectionRange(caret, caret);
    }
  });
}

/** Typing `/` at the start of the message (or after a space) lists the saved prompts whose
 * command or title matches what follows; arrows move, Enter or Tab choose, Escape closes. A
 * prompt with variables asks for their values first; the filled text replaces the command. */
export function usePromptCommands(api: Api, draft: string, setDraft: (value: string) => void): PromptCommands {
  const t = useT();
  const lt = useLibraryT();
  const [caret, setCaret] = useState(0);
  const [picked, setPicked] = useState(0);
  const [dismissedAt, setDismissedAt] = useState<number | null>(null);
  const [prompts, setPrompts] = useState<Prompt[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [filling, setFilling] = useState<{ prompt: Prompt; start: number; end: number } | null>(null);

  const typed = slashAt(draft, caret);
  const open = !!typed && typed.start !== dismissedAt && !filling;
  // Read each time the list opens, so prompts saved in Settings meanwhile are there.
  useEffect(() => {
    if (!open) return;
    let cancelled = false;
    api.prompts.listPrompts({}).then(
      (res) => {
        if (cancelled) return;
        setPrompts(res.prompts);
        setLoadError(null);
      },
      (err: unknown) => {
        if (!cancelled) setLoadError(describeError(err, t));
      },
    );
    return () => {
      cancelled = true;
    };
  }, [open, api, t]);

  const matches = open && typed && prompts ? matchPrompts(typed.query, prompts) : [];
  const active = matches.length > 0 ? Math.min(picked, matches.length - 1) : -1;

  const insert = (text: string, start: number, end: number) => {
    const next = replaceCommand(draft, start, end, text);
    setDraft(next.text);
    setCaret(next.caret);
    focusComposer(next.caret);
  };
  const choose = (prompt: Prompt) => {
    if (!typed) return;
    if (prompt.variables.length > 0) setFilling({ prompt, start: typed.start, end: caret });
    else insert(prompt.body, typed.start, caret);
  };

  const onKeyDownFirst = (e: KeyboardEvent<HTMLTextAreaElement>): boolean => {
    if (!open || !typed || e.nativeEvent.isComposing) return false;
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      setDismissedAt(typed.start);
      return true;
    }
    if (matches.length === 0) return false;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : -1;
      setPicked((active + step + matches.length) % matches.length);
      return true;
    }
    if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      choose(matches[active]);
      return true;
    }
    return false;
  };

  const optionId = (prompt: Prompt) => `prompt-option-${prompt.id}`;
  const suggestions = open && typed && (prompts || loadError) && (
    <div className="absolute bottom-full left-3 z-10 mb-1 w-[min(24rem,calc(100%-1.5rem))] rounded-lg border border-gray-200 bg-white text-sm shadow-lg sm:left-6">
      {loadError ? (
        <p role="alert" className="px-3 py-2 text-red-700">
          {lt("couldNotLoadPrompts")}: {loadError}
        </p>
      ) : matches.length === 0 ? (
        <p className="px-3 py-2 text-gray-500" data-testid="no-matching-prompts">
          {lt("noMatchingPrompts", { query: typed.query })}
        </p>
      ) : (
        <ul id="prompt-suggestions" role="listbox" aria-label={lt("promptSuggestions")} className="max-h-64 overflow-y-auto py-1">
          {matches.map((p, i) => (
            <li
              key={p.id.toString()}
              id={optionId(p)}
              role="option"
              aria-selected={i === active}
              className={`cursor-pointer px-3 py-1.5 ${i === active ? "bg-gray-100" : ""}`}
              onMouseDown={(e) => {
                // Keeps the focus in the box.
                e.preventDefault();
                choose(p);
              }}
            >
              <span className="font-medium">/{p.command}</span>
              <span className="ml-2 text-gray-500">{p.title}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );

  const dialog = filling && (
    <VariablesDialog
      prompt={filling.prompt}
      onInsert={(values) => {
        insert(fillPrompt(filling.prompt.body, values), filling.start, filling.end);
        setFilling(null);
      }}
      onClose={() => {
        setFilling(null);
        focusComposer(filling.end);
      }}
    />
  );

  return {
    onChange: (value, at) => {
      setDraft(value);
      setCaret(at);
      setPicked(0);
      // Escape closed the list for that one slash; once it is gone, a new one opens it again.
      if (!slashAt(value, at)) setDismissedAt(null);
    },
    onKeyDownFirst,
    inputAria: {
      role: "combobox",
      "aria-autocomplete": "list",
      "aria-expanded": matches.length > 0,
      "aria-controls": matches.length > 0 ? "prompt-suggestions" : undefined,
      "aria-activedescendant": active >= 0 ? optionId(matches[active]) : undefined,
    },
    suggestions,
    dialog,
  };
}

/** Asks for the value of each of a prompt's variables. */
function VariablesDialog({
  prompt,
  onInsert,
  onClose,
}: {
  prompt: Prompt;
  onInsert: (values: Record<string, string>) => void;
  onClose: () => void;
}) {
  const t = useT();
  const lt = useLibraryT();
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    onInsert(Object.fromEntries(prompt.variables.map((name) => [name, String(form.get(name) ?? "")])));
  };
  return (
    <Modal open title={lt("fillPrompt", { title: prompt.title })} onClose={onClose}>
      <form onSubmit={submit} className="space-y-3" aria-label={lt("fillPrompt", { title: prompt.title })}>
        {prompt.variables.map((name, i) => (
          <div key={name}>
            <label className="field-label" htmlFor={`prompt-variable-${name}`}>
              {name}
            </label>
            <input id={`prompt-variable-${name}`} name={name} className="input" autoFocus={i === 0} />
          </div>
        ))}
        <div className="flex justify-end gap-2 pt-2">
          <button type="button" className="btn-secondary" onClick={onClose}>
            {t("cancel")}
          </button>
          <button type="submit" className="btn-primary">
            {lt("insert")}
          </button>
        </div>
      </form>
    </Modal>
  );
}
