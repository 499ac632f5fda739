import { useLocale, type Locale } from "../i18n";

// The words of the prompt library, folders, the archive and what deleting a persona or a
// config does to the chats using it, in both languages. Kept apart from i18n.tsx so the
// features' words stay together.
const en = {
  prompts: "Prompts",
  promptsIntro:
    "Saved prompts: type / and the command in a chat's message box to insert one. Write {{name}} in a prompt for a value you fill in each time.",
  newPrompt: "New prompt",
  editPrompt: "Edit prompt",
  promptTitle: "Title",
  promptCommand: "Command",
  promptCommandHint: "Lowercase letters, digits, - and _.",
  promptBody: "Text",
  promptVariables: "Variables: {names}",
  noPrompts: "No saved prompts yet.",
  deletePromptConfirm: "Delete the prompt “{title}”?",
  couldNotLoadPrompts: "Could not load your prompts",
  promptSuggestions: "Saved prompts",
  noMatchingPrompts: "No prompt matches /{query}. Add prompts in Settings → Prompts.",
  fillPrompt: "Fill in “{title}”",
  insert: "Insert",
  folders: "Folders",
  newFolder: "New folder",
  folderName: "Folder name",
  renameFolder: "Rename folder",
  deleteFolder: "Delete folder",
  deleteFolderConfirm: "Delete the folder “{name}”? Its chats are kept and move out of it.",
  folderOptions: "Folder options: {name}",
  moveToFolder: "Move to folder",
  noFolder: "No folder",
  couldNotChangeFolders: "Could not change the folders",
  archivedChats: "Archived chats",
  archivedIntro: "Archived chats stay here, out of the chat list, until you unarchive them.",
  noArchivedChats: "No archived chats.",
  couldNotLoadArchive: "Could not load the archived chats",
  avatar: "Avatar",
  avatarHint: "An emoji or a few characters shown beside its answers.",
  personaUnused: "No chat uses it.",
  personaUsedBy: "Used by {count} chats; they keep their instructions and will have no persona. Their answers keep its name.",
  configUnused: "No chat uses it.",
  configUsedBy: "Used by {count} chats; they will use “{replacement}” instead.",
  configUsedByLast: "Used by {count} chats; they will have no API config until you add one.",
  usedByChats: "{count} chats",
  answeredAs: "as {persona}",
};

type LibraryKey = keyof typeof en;

const zhCN: Record<LibraryKey, string> = {
  prompts: "提示词",
  promptsIntro: "保存的提示词：在对话输入框中输入 / 和命令即可插入。在提示词中写 {{name}}，每次使用时填写其值。",
  newPrompt: "新建提示词",
  editPrompt: "编辑提示词",
  promptTitle: "标题",
  promptCommand: "命令",
  promptCommandHint: "小写字母、数字、- 和 _。",
  promptBody: "内容",
  promptVariables: "变量：{names}",
  noPrompts: "还没有保存的提示词。",
  deletePromptConfirm: "删除提示词“{title}”？",
  couldNotLoadPrompts: "无法加载你的提示词",
  promptSuggestions: "保存的提示词",
  noMatchingPrompts: "没有与 /{query} 匹配的提示词。可在 设置 → 提示词 中添加。",
  fillPrompt: "填写“{title}”",
  insert: "插入",
  folders: "文件夹",
  newFolder: "新建文件夹",
  folderName: "文件夹名称",
  renameFolder: "重命名文件夹",
  deleteFolder: "删除文件夹",
  deleteFolderConfirm: "删除文件夹“{name}”？其中的对话会保留并移出该文件夹。",
  folderOptions: "文件夹选项：{name}",
  moveToFolder: "移动到文件夹",
  noFolder: "不在文件夹中",
  couldNotChangeFolders: "无法修改文件夹",
  archivedChats: "已归档的对话",
  archivedIntro: "归档的对话保存在这里，不出现在对话列表中，直到你取消归档。",
  noArchivedChats: "没有已归档的对话。",
  couldNotLoadArchive: "无法加载已归档的对话",
  avatar: "头像",
  avatarHint: "显示在其回答旁的一个表情或几个字符。",
  personaUnused: "没有对话使用它。",
  personaUsedBy: "有 {count} 个对话使用它；这些对话保留其指令，将不再有角色。它们的回答保留该角色的名字。",
  configUnused: "没有对话使用它。",
  configUsedBy: "有 {count} 个对话使用它；这些对话将改用“{replacement}”。",
  configUsedByLast: "有 {count} 个对话使用它；在你添加新的 API 配置之前，这些对话将没有可用配置。",
  usedByChats: "{count} 个对话",
  answeredAs: "以 {persona} 的身份",
};

const dictionaries: Record<Locale, Record<LibraryKey, string>> = { en, "zh-CN": zhCN };

export function libraryText(locale: Locale, key: LibraryKey, vars?: Record<string, string | number>): string {
  let text = dictionaries[locale][key] ?? en[key];
  if (vars) for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

export function useLibraryT() {
  const { locale } = useLocale();
  return (key: LibraryKey, vars?: Record<string, string | number>) => libraryText(locale, key, vars);
}
