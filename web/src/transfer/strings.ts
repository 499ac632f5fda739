import { useLocale, type Locale } from "../i18n";

// The words of export, import and share links, in both languages. They live here rather than
// in i18n.tsx because only lazily loaded chunks (the chat menu's dialogs, the data settings,
// the shared page) use them: the sign-in page's entry chunk does not carry them.
const en = {
  shareChat: "Share chat",
  couldNotExport: "Could not export",
  shareIntro:
    "Anyone with a link can read the chat as it is when the link is made, without signing in. Later messages are not shared. Revoke a link to stop it working.",
  createLink: "Create link",
  creatingLink: "Creating link…",
  copyLink: "Copy link",
  linkCopied: "Link copied",
  couldNotCopy: "Could not copy; select the link and copy it.",
  revoke: "Revoke",
  revokeLinkConfirm: "Revoke this link? Anyone opening it will see that it does not exist.",
  linkRevoked: "Link revoked",
  couldNotShare: "Could not create a link",
  couldNotRevoke: "Could not revoke the link",
  couldNotLoadLinks: "Could not load your links",
  linksOfChat: "Links to this chat",
  myLinks: "My shared links",
  noLinks: "No shared links.",
  linkMessages: "{count} messages",
  sharedOn: "shared {date}",
  shareLink: "Share link",
  close: "Close",
  exportAll: "Export all my data",
  exportAllHint:
    "A zip of every chat (Parley JSON), your personas, your API configs (without their keys), your saved prompts and your settings.",
  exporting: "Exporting… {count} files",
  exported: "Exported {count} files",
  importChats: "Import chats",
  importHint: "A Parley JSON export (one chat or several) or a ChatGPT export (conversations.json). A file with a problem imports nothing.",
  chooseFile: "Choose file",
  importing: "Importing…",
  imported: "Imported {count} chats",
  couldNotImport: "Could not import",
  sharedChat: "Shared chat",
  sharedBy: "A read-only snapshot, shared {date}",
  sharedNotFound: "This shared chat does not exist or its link was revoked.",
  sharedCouldNotLoad: "The shared chat could not be loaded.",
  retry: "Retry",
  you: "User",
  assistant: "Assistant",
  openParley: "Open Parley",
  untitled: "Untitled chat",
};

export type TransferKey = keyof typeof en;

const zhCN: Record<TransferKey, string> = {
  shareChat: "分享对话",
  couldNotExport: "无法导出",
  shareIntro: "任何拥有链接的人无需登录即可阅读创建链接时的对话内容，之后的消息不会被分享。撤销链接即可让它失效。",
  createLink: "创建链接",
  creatingLink: "正在创建链接…",
  copyLink: "复制链接",
  linkCopied: "链接已复制",
  couldNotCopy: "无法复制，请选中链接后手动复制。",
  revoke: "撤销",
  revokeLinkConfirm: "要撤销这个链接吗？之后打开它的人会看到链接不存在。",
  linkRevoked: "链接已撤销",
  couldNotShare: "无法创建链接",
  couldNotRevoke: "无法撤销链接",
  couldNotLoadLinks: "无法加载你的链接",
  linksOfChat: "此对话的链接",
  myLinks: "我的分享链接",
  noLinks: "没有分享链接。",
  linkMessages: "{count} 条消息",
  sharedOn: "分享于 {date}",
  shareLink: "分享链接",
  close: "关闭",
  exportAll: "导出我的全部数据",
  exportAllHint: "一个 zip 文件，包含所有对话（Parley JSON）、你的人设、你的 API 配置（不含密钥）、你保存的提示词和你的设置。",
  exporting: "正在导出… {count} 个文件",
  exported: "已导出 {count} 个文件",
  importChats: "导入对话",
  importHint: "Parley JSON 导出文件（一个或多个对话）或 ChatGPT 导出文件（conversations.json）。文件有问题时不会导入任何内容。",
  chooseFile: "选择文件",
  importing: "正在导入…",
  imported: "已导入 {count} 个对话",
  couldNotImport: "无法导入",
  sharedChat: "分享的对话",
  sharedBy: "只读快照，分享于 {date}",
  sharedNotFound: "这个分享的对话不存在，或者链接已被撤销。",
  sharedCouldNotLoad: "无法加载分享的对话。",
  retry: "重试",
  you: "用户",
  assistant: "助手",
  openParley: "打开 Parley",
  untitled: "未命名对话",
};

const dictionaries: Record<Locale, Record<TransferKey, string>> = { en, "zh-CN": zhCN };

export function transferText(locale: Locale, key: TransferKey, vars?: Record<string, string | number>): string {
  let text = dictionaries[locale][key] ?? en[key];
  if (vars) for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

export function useTransferT() {
  const { locale } = useLocale();
  return (key: TransferKey, vars?: Record<string, string | number>) => transferText(locale, key, vars);
}
